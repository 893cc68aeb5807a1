"""Every appliance setting can be provisioned: the role's evr.toml carries each field of
``Settings`` (typed variables, ``evr_appliance_settings`` over them) and ``load_settings``
reads the same values back. The role's own settings task runs on localhost; no converge.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from appliance.config import Settings, load_settings
from tests.support.provisioning import PROVISIONING, tool

UUID_A = "0f9b2c1e-3a4d-4e5f-8a9b-0c1d2e3f4a5b"
UUID_B = "1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d"

# A value unlike the default for every setting, valid together; the test fails when a
# setting is added to Settings without a line here.
SAMPLE: dict[str, Any] = {
    "force_name": "Wessex Constabulary Ærø",
    "public_url": "https://evr.wessex.example",
    "host": "127.0.0.2",
    "port": 9443,
    "metrics_host": "127.0.0.3",
    "metrics_port": 9444,
    "data_dir": "/srv/evr-data",
    "database_url": "postgresql+psycopg://evr@db.wessex.example/evr",
    "tls_cert": "/srv/tls/cert.pem",
    "tls_key": "/srv/tls/key.pem",
    "master_key_file": "/srv/keys/master.key",
    "signing_key_file": "/srv/keys/signing.pem",
    "retention_days": 45,
    "minimise_after_days": 400,
    "retention_by_kind": {"upload": 60, "chat": 90},
    "retention_by_outcome": {"advice": 14},
    "retention_by_category": {"Harassment": 60},
    "evidential_outcomes": ["attend"],
    "evidential_review_days": 3650,
    "backup_recipient": "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
    "controller_name": "The Chief Constable of Wessex Police",
    "dpo_contact": "dpo@wessex.police.example",
    "accessibility_contact": "accessibility@wessex.police.example, or 101",
    "purge_interval_minutes": 0,
    "session_idle_minutes": 20,
    "session_absolute_hours": 10,
    "login_max_failures": 7,
    "login_lockout_seconds": 600,
    "login_lockout_max_seconds": 1800,
    "local_admin_totp_required": False,
    "oidc_issuer": "https://login.microsoftonline.com/wessex-tenant/v2.0",
    "oidc_client_id": "0f9b2c1e-aaaa-4e5f-8a9b-0c1d2e3f4a5b",
    "oidc_client_secret": "an Entra client secret",
    "oidc_client_key_file": "set by the test: a real private key",
    "oidc_client_key_id": "evr-box-2026",
    "oidc_client_certificate_file": "set by the test: the key's certificate",
    "oidc_redirect_url": "https://evr.wessex.example/oidc/callback",
    "oidc_scopes": ["openid", "profile"],
    "oidc_groups_claim": "roles",
    "oidc_role_map": {"EVR.Handler": ["handler"], "EVR.Supervisor": ["supervisor", "handler"]},
    "oidc_required_amr": ["mfa"],
    "oidc_required_acr": ["urn:wessex:mfa"],
    "cad_client_ca_file": "set by the test: a real CA file",
    "cad_client_port": 9445,
    "cad_client_certificates": {
        "CN=cad-01,O=Wessex Police": "cad",
        "DNS:cad.wessex.example": "cad",
    },
    "login_failures_per_source": 20,
    "refusals_per_source": 120,
    "oidc_starts_per_source": 45,
    "chat_per_minute": 40,
    "socket_messages_per_minute": 200,
    "chat_max_per_call": 2000,
    "console_chat_shown": 300,
    "chat_presets": ["Are you somewhere safe?", "Please hold the phone still."],
    "upload_max_image_pixels": 40_000_000,
    "upload_resume_hours": 6.0,
    "password_min_length": 14,
    "min_free_bytes": 2 * 1024**3,
    "invite_ttl_hours": 48,
    "queue_target_seconds": 240,
    "response_target_hours_by_grade": {"1": 0.5, "2": 3.0, "3": 24.0, "4": 96.0},
    "response_target_hours_by_category": {"Domestic abuse": 1.0, "Fraud": 72.5},
    "incident_categories": ["Burglary", "Theft", "Domestic abuse", "Harassment", "Other"],
    "eligibility_questions": ["The caller is 18 or over", "There is no immediate threat"],
    "outcome_codes": {"advice": "Advice given", "attend": "Officer to attend"},
    "outcome_codes_deploying": ["attend"],
    "stun_urls": ["stun:evr.wessex.example:3478"],
    "turn_urls": ["turn:evr.wessex.example:3478?transport=udp"],
    "turn_secret": "t" * 40,
    "turn_ttl_seconds": 7200,
    "media_allow_loopback": True,
    "media_workers": 3,
    "log_format": "json",
    "log_level": "DEBUG",
    "notify_adapter": "webhook",
    "notify_api_key": f"evr-{UUID_A}-{UUID_B}",
    "notify_template_id": UUID_A,
    "notify_base_url": "https://notify.wessex.example",
    "notify_webhook_url": "https://sms.wessex.example/send",
    "notify_webhook_secret": "w" * 40,
    "notify_timeout_seconds": 7.5,
    "notify_max_attempts": 9,
    "sms_invite_template": "{force_name}: your video link: {link}",
    "sms_max_segments": 4,
    "appointment_hours": {"mon": "09:00-17:00", "sat": "10:00-12:00"},
    "appointment_slot_minutes": 20,
    "appointment_officers": 3,
    "appointment_reminder_minutes": 30,
    "appointment_link_opens_minutes": 10,
    "sms_upload_template": "{force_name}: send photos here: {link}",
    "sms_location_template": "{force_name}: share where you are: {link}",
    "upload_max_file_bytes": 100 * 1024**2,
    "upload_max_total_bytes": 500 * 1024**2,
    "upload_max_files": 10,
    "statement_declaration": 'This is "true" to the best of my knowledge \\ belief.\n\tSigned.',
    "statement_sign_hours": 36.5,
    "cad_webhook_url": "https://cad.wessex.example/evr",
    "cad_webhook_secret": "c" * 40,
    "cad_webhook_events": ["call.ended", "incident.closed"],
    "cad_webhook_max_attempts": 4,
    "cad_webhook_ca_file": "set by the test: a real CA file",
    "cad_webhook_backoff_seconds": 2.5,
    "cad_webhook_timeout_seconds": 20.0,
    "call_abandoned_seconds": 120.0,
    "caller_rejoin_minutes": 2.5,
    "caller_language_default": "cy",
    "guests_enabled": False,
    "guests_max": 5,
    "guests_recorded": False,
    "observers_shown_to_caller": False,
    "staff_refresh_seconds": 7.5,
    "viewers_shown_to_caller": False,
    "location_update_seconds": 30,
    "location_bounds": [50.0, -3.0, 51.5, -1.0],
    "force_map_url": "https://maps.wessex.example/?lat={lat:.6f}&lon={lon:.6f}&z=17",
    "rvr_categories": ["Domestic abuse", "Harassment"],
    "rvr_target_minutes": 20,
    "rvr_link_minutes": 45,
    "rvr_sms_template": "Your appointment link: {link}",
    "rvr_page_title": "Booking",
    "rvr_show_force_name": True,
    "quick_exit_url": "https://www.example.org/weather",
    "unsafe_words": ["police", "abuse", "victim"],
    "dash_questions_file": "/srv/dash.json",
    "dash_marac_yes_count": 12,
    "sms_survey_template": "{force_name}: how did we do? {link}",
    "survey_sms_delay_minutes": 60,
    "survey_link_days": 7,
    "survey_sms_skip_categories": ["Domestic abuse", "Harassment"],
    "trial_block_sizes": [2, 8],
    "evaluation_positive_rating": 5,
    "evaluation_visit_officer_hours": 2.5,
    "evaluation_video_officer_hours": 0.5,
    "evaluation_officer_hour_cost": 42.0,
    "evaluation_visit_travel_cost": 12.0,
}

# Settings the role sets from a variable of its own (vars/main.yml); the rest go through
# evr_appliance_settings.
TYPED = {
    name: f"evr_appliance_{name}"
    for name in (
        "force_name",
        "public_url",
        "host",
        "port",
        "metrics_host",
        "metrics_port",
        "data_dir",
        "database_url",
        "retention_days",
        "minimise_after_days",
        "session_idle_minutes",
        "session_absolute_hours",
        "login_max_failures",
        "login_lockout_seconds",
        "password_min_length",
        "min_free_bytes",
        "invite_ttl_hours",
        "incident_categories",
        "stun_urls",
        "turn_urls",
        "turn_secret",
        "turn_ttl_seconds",
        "media_allow_loopback",
        "log_format",
        "log_level",
        "notify_adapter",
        "notify_api_key",
        "notify_template_id",
        "notify_webhook_url",
        "notify_webhook_secret",
        "cad_webhook_url",
        "cad_webhook_secret",
    )
} | {"master_key_file": "evr_appliance_master_key_path"}
FROM_TLS_DIR = {"tls_cert": "cert.pem", "tls_key": "key.pem"}

PLAYBOOK = """---
- name: Write evr.toml with the role's settings task only
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Write the settings file
      ansible.builtin.include_role:
        name: evr_appliance
        tasks_from: settings
"""


def _private_key(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _certificate_of(key_file: Path, path: Path) -> Path:
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EVR appliance (Wessex)")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _ca_file(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Wessex CAD CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _render(tmp_path: Path, variables: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """The role's settings task on localhost, writing ``tmp_path/evr.toml``."""
    (tmp_path / "playbook.yml").write_text(PLAYBOOK)
    base = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "evr_appliance_config_file": str(tmp_path / "evr.toml"),
        "evr_appliance_group": "root",
        "evr_appliance_manage_services": False,
        "evr_appliance_venv": sys.prefix,
        "evr_appliance_public_url": "https://evr.test.example",
        "evr_appliance_force_name": "Test Constabulary",  # required: no default
    }
    (tmp_path / "vars.json").write_text(json.dumps(base | variables))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVR_")}
    env |= {
        "ANSIBLE_CONFIG": str(PROVISIONING / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(PROVISIONING / "roles"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
        "ANSIBLE_NOCOLOR": "1",
    }
    return subprocess.run(
        [
            tool("ansible-playbook"),
            "-i",
            "localhost,",
            "-e",
            f"@{tmp_path / 'vars.json'}",
            str(tmp_path / "playbook.yml"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Path):
        return str(value)
    return value


@pytest.fixture
def no_evr_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """EVR_* variables outrank the file: none may decide what load_settings reads here."""
    for name in list(os.environ):
        if name.startswith("EVR_"):
            monkeypatch.delenv(name)


def test_every_setting_reaches_evr_toml_and_loads_back(
    tmp_path: Path, no_evr_environment: None
) -> None:
    assert set(SAMPLE) == set(Settings.model_fields), "SAMPLE must name every setting"
    expected = SAMPLE | {
        "cad_webhook_ca_file": str(_ca_file(tmp_path / "cad-ca.pem")),
        "cad_client_ca_file": str(_ca_file(tmp_path / "cad-client-ca.pem")),
        "oidc_client_key_file": str(_private_key(tmp_path / "oidc-client.pem")),
        "oidc_client_certificate_file": str(
            _certificate_of(tmp_path / "oidc-client.pem", tmp_path / "oidc-client.crt")
        ),
    }
    for name, value in expected.items():
        default = Settings.model_fields[name].get_default(call_default_factory=True)
        assert _plain(default) != value, f"{name}: the sample equals the default, proves nothing"
    variables: dict[str, Any] = {"evr_appliance_tls_dir": "/srv/tls", "evr_appliance_settings": {}}
    for name, value in expected.items():
        if name in TYPED:
            variables[TYPED[name]] = value
        elif name not in FROM_TLS_DIR:
            variables["evr_appliance_settings"][name] = value
    assert len(variables["evr_appliance_settings"]) > 40, "most settings go by the dictionary"

    run = _render(tmp_path, variables)

    assert run.returncode == 0, run.stdout + run.stderr
    path = tmp_path / "evr.toml"
    raw = tomllib.loads(path.read_text())
    assert set(raw) == set(Settings.model_fields)
    loaded = load_settings(path)
    for name, value in expected.items():
        assert raw[name] == value, f"{name} in evr.toml"
        assert _plain(getattr(loaded, name)) == value, f"{name} read back by load_settings"


def test_settings_dictionary_wins_and_null_keeps_the_appliance_default(
    tmp_path: Path, no_evr_environment: None
) -> None:
    run = _render(
        tmp_path,
        {
            "evr_appliance_log_level": "INFO",
            "evr_appliance_retention_days": None,
            "evr_appliance_settings": {"log_level": "WARNING", "purge_interval_minutes": None},
        },
    )
    assert run.returncode == 0, run.stdout + run.stderr
    raw = tomllib.loads((tmp_path / "evr.toml").read_text())
    assert raw["log_level"] == "WARNING"
    assert "retention_days" not in raw and "purge_interval_minutes" not in raw
    loaded = load_settings(tmp_path / "evr.toml")
    assert loaded.retention_days == Settings.model_fields["retention_days"].default


def test_settings_dictionary_may_not_set_what_the_role_manages(tmp_path: Path) -> None:
    run = _render(tmp_path, {"evr_appliance_settings": {"port": 9000}})
    assert run.returncode != 0
    assert "evr_appliance_settings may not set" in run.stdout
    assert not (tmp_path / "evr.toml").exists()


def test_an_invalid_setting_fails_the_run_and_keeps_the_old_file(tmp_path: Path) -> None:
    old = tmp_path / "evr.toml"
    old.write_text('force_name = "Before"\n')
    run = _render(tmp_path, {"evr_appliance_settings": {"retention_days": 0}})
    assert run.returncode != 0
    assert "invalid setting retention_days" in run.stdout + run.stderr
    assert old.read_text() == 'force_name = "Before"\n'
