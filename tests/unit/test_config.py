"""Settings: defaults, TOML, environment, and a clear stop on a bad value."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.cli import box
from appliance.config import Settings, SettingsError, load_settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("EVR_"):
            monkeypatch.delenv(name)


def test_defaults_are_the_embedded_ones() -> None:
    settings = load_settings()
    assert settings.port == 8443
    assert settings.data_dir == Path("var")
    assert settings.effective_database_url.endswith("/var/evr.db")
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.tls_paths == (Path("var/tls/cert.pem"), Path("var/tls/key.pem"))
    # A box admin's password alone opens nothing but enrolling a second factor.
    assert settings.local_admin_totp_required is True


def test_toml_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "evr.toml"
    config.write_text('force_name = "Dorset Police"\nport = 9443\nlog_level = "debug"\n')
    settings = load_settings(config)
    assert (settings.force_name, settings.port, settings.log_level) == (
        "Dorset Police",
        9443,
        "DEBUG",
    )
    monkeypatch.setenv("EVR_PORT", "10443")
    monkeypatch.setenv("EVR_DATABASE_URL", "postgresql+psycopg://evr@db/evr")
    settings = load_settings(config)
    assert settings.port == 10443
    assert settings.effective_database_url == "postgresql+psycopg://evr@db/evr"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"EVR_PORT": "70000"}, "invalid setting port (environment variable EVR_PORT)"),
        ({"EVR_PORT": "https"}, "invalid setting port"),
        ({"EVR_PUBLIC_URL": "evr.example"}, "invalid setting public_url"),
        ({"EVR_DATABASE_URL": "mysql://x"}, "invalid setting database_url"),
        ({"EVR_LOG_FORMAT": "xml"}, "invalid setting log_format"),
        ({"EVR_SESSION_IDLE_MINUTES": "0"}, "invalid setting session_idle_minutes"),
        ({"EVR_TLS_CERT": "/tmp/only-cert.pem"}, "tls_cert and tls_key must be set together"),
    ],
)
def test_invalid_values_name_the_setting(
    env: dict[str, str], named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert named in str(raised.value)


def test_unknown_key_and_bad_toml_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "evr.toml"
    config.write_text("prot = 8443\n")
    with pytest.raises(SettingsError, match="invalid setting prot"):
        load_settings(config)
    config.write_text("port = \n")
    with pytest.raises(SettingsError, match=r"evr\.toml"):
        load_settings(config)
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "missing.toml")


def test_an_invalid_setting_stops_start_up_with_exit_code_2(tmp_path: Path) -> None:
    """`evr serve` with a bad port: a message naming it, non-zero exit, nothing created."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVR_")}
    env.update(EVR_PORT="99999", EVR_DATA_DIR=str(tmp_path / "var"))
    result = subprocess.run(
        [sys.executable, "-m", "appliance", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "invalid setting port (environment variable EVR_PORT)" in result.stderr
    assert "99999" in result.stderr
    assert not (tmp_path / "var").exists()


def test_serve_refuses_to_start_without_the_forces_own_name(tmp_path: Path) -> None:
    """No force_name set: `evr serve` stops with the reason before making anything (the
    default name would reach callers' pages and SMS); set in the TOML file, it starts."""
    settings = load_settings(data_dir=tmp_path / "var")
    with pytest.raises(SettingsError, match="force_name is required to serve"):
        box.cmd_serve(settings, argparse.Namespace())
    assert not (tmp_path / "var").exists()
    config = tmp_path / "evr.toml"
    config.write_text('force_name = "Dorset Police"\n')
    load_settings(config).require_for_serve()


def test_every_setting_is_documented_and_every_documented_one_exists() -> None:
    documented = set(re.findall(r"`EVR_([A-Z_]+)`", DOCS.read_text()))
    fields = {name.upper() for name in Settings.model_fields}
    assert fields == documented
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"


def test_retention_outcomes_must_be_outcome_codes() -> None:
    """A force with its own outcome codes still starts (the default evidential outcome
    applies only where the code exists); a retention rule naming an unknown code stops
    start-up with the setting's name."""
    own = load_settings(outcome_codes={"advice": "Advice"})
    assert own.evidential_outcomes == []
    assert load_settings().evidential_outcomes == ["crime_recorded"]
    with pytest.raises(SettingsError, match="evidential_outcomes: nope not in outcome_codes"):
        load_settings(evidential_outcomes=["nope"])
    with pytest.raises(SettingsError, match="retention_by_kind"):
        load_settings(retention_by_kind={"statement": 10})
