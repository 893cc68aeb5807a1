"""The one settings object.

Every setting comes, in rising precedence, from its default, the TOML file
(``--config``, else ``/etc/evr/evr.toml`` when present) and an ``EVR_*``
environment variable. ``docs/configuration.md`` documents each one; a test keeps
the two in step.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import string
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE = Path("/etc/evr/evr.toml")
SMS_TEMPLATES = (
    "sms_invite_template",
    "sms_upload_template",
    "sms_location_template",
    "sms_survey_template",
    "rvr_sms_template",
)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL_DAYS = {day: f"{day}day" for day in ("mon", "fri", "sun")} | {
    "tue": "tuesday",
    "wed": "wednesday",
    "thu": "thursday",
    "sat": "saturday",
}
HOURS_RE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)")
DEFAULT_SMS_INVITE = "{force_name}: here is the link for your video call: {link}"
DEFAULT_SMS_UPLOAD = "{force_name}: here is the link to send your photos and videos: {link}"
DEFAULT_SMS_LOCATION = "{force_name}: here is the link to share where you are: {link}"
DEFAULT_RVR_SMS = "Here is the link for your appointment: {link}"
DEFAULT_UNSAFE_WORDS = (
    "police",
    "crime",
    "abuse",
    "abuser",
    "domestic",
    "violence",
    "victim",
    "offence",
    "offender",
    "assault",
    "refuge",
    "999",
    "101",
)
DEFAULT_SMS_SURVEY = "{force_name}: please tell us how we did. It takes a minute: {link}"
# South, west, north, east: Great Britain, Northern Ireland, the Isle of Man, the
# Channel Islands, Scilly, Shetland, with a margin.
UK_BOUNDS = [49.0, -8.8, 61.0, 2.0]
DEFAULT_DECLARATION = (
    "This statement is true to the best of my knowledge and belief and I make it knowing "
    "that, if it is tendered in evidence, I shall be liable to prosecution if I have wilfully "
    "stated in it anything which I know to be false, or do not believe to be true."
)
CAD_EVENTS = (
    "incident.outcome",
    "incident.closed",
    "call.connected",
    "call.ended",
    "statement.signed",
)

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
NOTIFY_KEY_RE = re.compile(rf".+-{UUID_RE.pattern}-{UUID_RE.pattern}", re.I)

# pydantic builds the sources inside the constructor, with no argument of ours to
# carry the TOML path there, so it travels in a context variable.
_config_file_var: ContextVar[Path | None] = ContextVar("evr_config_file")


class SettingsError(Exception):
    """A setting is invalid; the message names it and says what is wrong."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="EVR_",
        extra="forbid",
        validate_default=True,
    )

    force_name: str = Field(
        "EVR Appliance",
        min_length=1,
        max_length=120,
        description="The force's name, shown on every page a caller or handler sees.",
    )
    public_url: str | None = Field(
        None,
        description="Base URL callers and handlers reach the box at, used in links. "
        "Default: https://<hostname>:<port>.",
    )
    host: str = Field("0.0.0.0", description="Address to listen on.")  # noqa: S104
    port: int = Field(8443, ge=1, le=65535, description="TCP port for HTTPS.")
    data_dir: Path = Field(
        Path("var"), description="Where the database, certificate and media live."
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL. Default: SQLite at <data_dir>/evr.db. "
        "PostgreSQL: postgresql+psycopg://user:pass@host/db.",
    )
    tls_cert: Path | None = Field(
        None,
        description="PEM certificate chain. Default: <data_dir>/tls/cert.pem, "
        "made self-signed on first start when neither it nor the key exist.",
    )
    tls_key: Path | None = Field(
        None, description="PEM private key. Default: <data_dir>/tls/key.pem."
    )
    master_key_file: Path | None = Field(
        None,
        description="The 32-byte master key that wraps every evidence file's data key. "
        "Default: <data_dir>/keys/master.key, made on first start only while nothing is sealed.",
    )
    signing_key_file: Path | None = Field(
        None,
        description="The box's Ed25519 key (PEM) that signs export bundles. "
        "Default: <data_dir>/keys/signing.pem, made on first start.",
    )
    retention_days: int = Field(
        30,
        ge=1,
        description="Recordings, snapshots and uploads not marked evidential are deleted "
        "this many days after they were made.",
    )
    minimise_after_days: int = Field(
        365,
        ge=1,
        description="A closed incident's caller details (name, phone, location) are removed "
        "this many days after it closed, unless any of its evidence is evidential or on hold.",
    )
    purge_interval_minutes: int = Field(
        60, ge=0, description="How often the server runs the purge; 0: only `evr purge`."
    )
    session_idle_minutes: int = Field(
        30, ge=1, le=24 * 60, description="A signed-in session ends after this long unused."
    )
    session_absolute_hours: int = Field(
        12, ge=1, le=7 * 24, description="A session ends this long after sign-in, used or not."
    )
    login_max_failures: int = Field(
        5, ge=1, le=100, description="Consecutive wrong passwords before the account locks."
    )
    login_lockout_seconds: int = Field(
        300,
        ge=1,
        le=86400,
        description="First lock's length; each further lock without a good sign-in doubles it "
        "(at most 24 hours).",
    )
    password_min_length: int = Field(
        12, ge=8, le=128, description="Shortest password a user may choose."
    )
    min_free_bytes: int = Field(
        1024**3,
        ge=0,
        description="/readyz fails when the data dir has less free space than this.",
    )
    invite_ttl_hours: int = Field(
        24, ge=1, le=24 * 14, description="A caller's link works for this long after it is made."
    )
    queue_target_seconds: int = Field(
        180,
        ge=10,
        le=86400,
        description="How long a caller who has joined should wait, at "
        "most, before a handler admits them; longer counts as a target breach.",
    )
    response_target_hours_by_grade: dict[str, float] = Field(
        {"1": 1.0, "2": 4.0, "3": 48.0, "4": 168.0},
        description="Hours from an incident's receipt to its video response, by grade "
        "(grade 3: 48 hours, Dorset's target). The queue orders by this and shows breaches.",
    )
    response_target_hours_by_category: dict[str, float] = Field(
        {},
        description="Targets that override the grade's for a category, e.g. "
        '{"Domestic abuse": 1}.',
    )
    incident_categories: list[str] = Field(
        [
            "Burglary",
            "Criminal damage",
            "Theft",
            "Vehicle crime",
            "Anti-social behaviour",
            "Fraud",
            "Harassment",
            "Domestic abuse",
            "Assault",
            "Other",
        ],
        min_length=1,
        description="Categories a handler picks from when creating an incident.",
    )
    eligibility_questions: list[str] = Field(
        [
            "The caller is 18 or over, or a parent or guardian is with them",
            "The caller has a smartphone with a camera, and 4G or Wi-Fi",
            "The offender is not present",
            "There is no immediate threat, risk or harm",
            "The caller agrees to a video call and knows an officer can still visit instead",
        ],
        min_length=1,
        description="The checklist a handler answers before a video invite (Dorset's rules by "
        "default). Every answer must be yes for the video path.",
    )
    outcome_codes: dict[str, str] = Field(
        {
            "advice_given": "Advice given",
            "crime_recorded": "Crime recorded",
            "resolved_on_call": "Resolved on the call",
            "referred": "Referred to a partner agency",
            "officer_to_attend": "Officer to attend",
            "no_further_action": "No further action",
        },
        min_length=1,
        description="Outcome codes (code: label) a handler chooses from; closing an "
        "incident needs one.",
    )
    outcome_codes_deploying: list[str] = Field(
        ["officer_to_attend"],
        description="Outcome codes that mean someone is sent: a deployment, never avoided.",
    )
    stun_urls: list[str] = Field(
        [],
        description='STUN servers for both legs, e.g. ["stun:evr.example:3478"]. '
        "Never a public default.",
    )
    turn_urls: list[str] = Field(
        [],
        description="TURN servers (coturn) for callers on mobile networks, e.g. "
        '["turn:evr.example:3478?transport=udp"].',
    )
    turn_secret: SecretStr | None = Field(
        None,
        description="coturn's static-auth-secret (use-auth-secret): credentials are "
        "minted per call from it and expire.",
    )
    turn_ttl_seconds: int = Field(
        3600 * 4, ge=60, le=86400, description="How long a call's TURN credentials last."
    )
    media_allow_loopback: bool = Field(
        False,
        description="Offer 127.0.0.1 ICE candidates (only for a box, or a test, "
        "that reaches the browser over loopback).",
    )
    media_workers: int = Field(
        default_factory=lambda: len(os.sched_getaffinity(0)),
        ge=0,
        le=256,
        description="Media worker processes; calls are spread over them (default: the "
        "cores this process may use). 0 runs media inside the web process.",
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="`json` writes one JSON object per line, for a log shipper."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level logged."
    )
    notify_adapter: Literal["outbox", "govuk_notify", "webhook"] = Field(
        "outbox",
        description="How SMS invites leave the box: outbox (kept for an admin to pass on), "
        "govuk_notify (GOV.UK Notify's API) or webhook (the force's own SMS gateway).",
    )
    notify_api_key: SecretStr | None = Field(
        None,
        description="GOV.UK Notify API key: {key_name}-{service_id}-{secret_key}. "
        "Needed by govuk_notify.",
    )
    notify_template_id: str | None = Field(
        None,
        description="GOV.UK Notify template id (a UUID) whose text is ((body)). "
        "Needed by govuk_notify.",
    )
    notify_base_url: str = Field(
        "https://api.notifications.service.gov.uk",
        description="GOV.UK Notify API base URL.",
    )
    notify_webhook_url: str | None = Field(
        None, description="The force's SMS gateway URL that takes signed JSON. Needed by webhook."
    )
    notify_webhook_secret: SecretStr | None = Field(
        None,
        description="HMAC-SHA256 key the webhook request is signed with (32+ characters). "
        "Needed by webhook.",
    )
    notify_timeout_seconds: float = Field(
        10, gt=0, le=120, description="Longest wait for the SMS gateway to answer one message."
    )
    notify_max_attempts: int = Field(
        5, ge=1, le=20, description="Tries per message before it is marked failed."
    )
    sms_invite_template: str = Field(
        DEFAULT_SMS_INVITE,
        min_length=10,
        max_length=300,
        description="The invite SMS: {force_name} and {link} are filled in. Neutral wording "
        "only (it may be read by someone else): checked against unsafe_words.",
    )
    appointment_hours: dict[str, str] = Field(
        dict.fromkeys(WEEKDAYS, "08:30-21:30"),
        description="Opening hours for booked video appointments per weekday, Europe/London "
        'wall-clock time, e.g. {"mon": "08:30-21:30", "sun": "closed"}; a day left out is '
        "closed.",
    )
    appointment_slot_minutes: int = Field(
        30, ge=5, le=240, description="Length of one appointment slot."
    )
    appointment_officers: int = Field(
        2, ge=1, le=100, description="Video officers on duty: appointments bookable per slot."
    )
    appointment_reminder_minutes: int = Field(
        60, ge=0, le=7 * 24 * 60, description="The reminder SMS goes this long before the slot."
    )
    appointment_link_opens_minutes: int = Field(
        15, ge=0, le=24 * 60, description="An appointment's link works from this long before it."
    )

    sms_upload_template: str = Field(
        DEFAULT_SMS_UPLOAD,
        min_length=10,
        max_length=300,
        description="The SMS for an upload invite (photos and videos); same rules as "
        "sms_invite_template.",
    )
    sms_location_template: str = Field(
        DEFAULT_SMS_LOCATION,
        min_length=10,
        max_length=300,
        description="The SMS for a location invite; same rules as sms_invite_template.",
    )
    upload_max_file_bytes: int = Field(
        200 * 1024**2,
        ge=1024,
        description="Largest single photo or video a caller may send.",
    )
    upload_max_total_bytes: int = Field(
        1024**3,
        ge=1024,
        description="Most one upload link may receive in all; reaching it spends the link.",
    )
    upload_max_files: int = Field(
        20, ge=1, le=1000, description="Most files one upload link may receive."
    )
    statement_declaration: str = Field(
        DEFAULT_DECLARATION,
        min_length=20,
        max_length=2000,
        description="The declaration a witness signs under their statement, printed on the PDF "
        "(the Criminal Justice Act 1967 s.9 wording by default).",
    )
    statement_sign_hours: float = Field(
        24,
        gt=0,
        le=168,
        description="How long after the call ends the caller's link can still read and sign "
        "a statement sent to it.",
    )
    cad_webhook_url: str | None = Field(
        None,
        description="The force CAD's URL for outbound events (signed JSON POSTs). Unset: no "
        "events are queued.",
    )
    cad_webhook_secret: SecretStr | None = Field(
        None,
        description="HMAC-SHA256 key the CAD events are signed with (32+ characters). Needed "
        "with cad_webhook_url.",
    )
    cad_webhook_events: list[str] = Field(
        list(CAD_EVENTS),
        description="Which events go to the CAD: " + ", ".join(CAD_EVENTS) + ".",
    )
    cad_webhook_max_attempts: int = Field(
        8, ge=1, le=30, description="Tries per CAD event before it is marked failed."
    )
    cad_webhook_ca_file: Path | None = Field(
        None,
        description="A PEM CA certificate to trust for the CAD's HTTPS, besides the system's "
        "(a force's own PKI).",
    )
    cad_webhook_backoff_seconds: float = Field(
        5,
        gt=0,
        le=600,
        description="Wait before the first retry of a CAD event; it doubles per attempt, up "
        "to an hour.",
    )
    cad_webhook_timeout_seconds: float = Field(
        10, gt=0, le=120, description="Longest wait for the CAD to answer one event."
    )
    call_abandoned_seconds: float = Field(
        300,
        gt=0,
        le=86400,
        description="A connected call that both the caller and the handler have left ends "
        "(reason abandoned) after this long; either can rejoin before then.",
    )
    guests_enabled: bool = Field(
        True,
        description="Whether an officer may invite a guest (interpreter, second officer, "
        "supervisor) onto a live call.",
    )
    location_bounds: list[float] = Field(
        UK_BOUNDS,
        description="A shared location outside this box [south, west, north, east] (degrees) "
        "is refused as implausible; [] accepts anywhere on Earth.",
    )

    rvr_categories: list[str] = Field(
        ["Domestic abuse"],
        description="Incident categories on the Rapid Video Response track: their own queue, "
        "a target in minutes, the safety questions before the invite and the safe caller pages.",
    )
    rvr_target_minutes: int = Field(
        15,
        ge=1,
        le=24 * 60,
        description="Minutes from an RVR incident's receipt to its video call; RVR work sorts "
        "above all other work on the queue.",
    )
    rvr_link_minutes: int = Field(
        30, ge=5, le=24 * 60, description="An RVR link works for this long after it is sent."
    )
    rvr_sms_template: str = Field(
        DEFAULT_RVR_SMS,
        min_length=10,
        max_length=300,
        description="The RVR invite SMS: {link} (and {force_name}, if the force wants its "
        "name shown) are filled in. Checked against unsafe_words.",
    )
    rvr_page_title: str = Field(
        "Appointment",
        min_length=1,
        max_length=60,
        description="The title and heading of every caller page on the RVR path (what a "
        "browser tab or history shows). Checked against unsafe_words.",
    )
    rvr_show_force_name: bool = Field(
        False,
        description="Show the force's name on the RVR caller pages. Off: the pages carry no "
        "name or crest at all.",
    )
    quick_exit_url: str = Field(
        "https://www.bbc.co.uk/weather",
        description="The harmless site the quick-exit control on every caller page leaves for.",
    )
    unsafe_words: list[str] = Field(
        list(DEFAULT_UNSAFE_WORDS),
        description="Words that must never appear in the wording of any SMS template or an "
        "RVR caller page's title (whole words, any case); checked at start-up.",
    )
    dash_questions_file: Path | None = Field(
        None,
        description="A JSON file of the force's own DASH questions "
        '([{"id": "...", "text": "..."}, ...]) replacing the shipped short headings.',
    )
    dash_marac_yes_count: int = Field(
        14,
        ge=1,
        le=100,
        description="This many yes answers on the DASH checklist flag a MARAC referral even "
        "when the officer's risk level is not high.",
    )
    sms_survey_template: str = Field(
        DEFAULT_SMS_SURVEY,
        min_length=10,
        max_length=300,
        description="The SMS with the caller survey's link; same rules as sms_invite_template.",
    )
    survey_sms_delay_minutes: int = Field(
        120,
        ge=0,
        le=30 * 24 * 60,
        description="The survey SMS goes this long after a video call ends (or an in-person "
        "response is recorded), unless the caller has answered on the call page by then.",
    )
    survey_link_days: int = Field(
        14, ge=1, le=90, description="How long the survey link in the SMS works."
    )
    survey_sms_skip_categories: list[str] = Field(
        ["Domestic abuse"],
        description="Incident categories whose callers are never sent the survey by SMS (a "
        "later text may be read by the abuser); they can still answer on the call page.",
    )
    trial_block_sizes: list[int] = Field(
        [4, 6],
        min_length=1,
        description="Block sizes of the randomised trial; each block's size is drawn from "
        "this list and holds as many video as usual-response places. Even numbers only.",
    )
    evaluation_positive_rating: int = Field(
        4,
        ge=2,
        le=5,
        description="A survey rating (1-5) at or above this counts as positive / satisfied.",
    )
    evaluation_visit_officer_hours: float = Field(
        2.0,
        ge=0,
        le=48,
        description="Officer hours an in-person attendance takes, travel included (unit cost "
        "for the time-saved measure).",
    )
    evaluation_video_officer_hours: float = Field(
        0.75,
        ge=0,
        le=48,
        description="Officer hours a video response takes (set against a visit's hours).",
    )
    evaluation_officer_hour_cost: float = Field(
        40.0, ge=0, description="Cost of one officer hour, in pounds."
    )
    evaluation_visit_travel_cost: float = Field(
        15.0, ge=0, description="Travel cost of one in-person attendance (mileage), in pounds."
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or http:// behind a TLS proxy)")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        return value

    @field_validator("stun_urls", "turn_urls")
    @classmethod
    def _ice_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("stun:", "stuns:", "turn:", "turns:")):
                raise ValueError(f"{url!r} is not a stun:, stuns:, turn: or turns: URL")
        return value

    @field_validator("notify_base_url", "notify_webhook_url", "cad_webhook_url")
    @classmethod
    def _notify_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an https:// (or http://) URL")
        return value.rstrip("/")

    @field_validator("notify_template_id")
    @classmethod
    def _template_id(cls, value: str | None) -> str | None:
        if value is not None and not UUID_RE.fullmatch(value):
            raise ValueError("must be the template's UUID, as GOV.UK Notify shows it")
        return value

    @field_validator("notify_api_key")
    @classmethod
    def _api_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not NOTIFY_KEY_RE.fullmatch(value.get_secret_value()):
            raise ValueError("must be a GOV.UK Notify API key: {key_name}-{uuid}-{uuid}")
        return value

    @field_validator("notify_webhook_secret", "cad_webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        return value

    @field_validator("cad_webhook_ca_file")
    @classmethod
    def _ca_file(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        try:
            ssl.create_default_context().load_verify_locations(cafile=str(value))
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"cannot use {value} as a CA certificate: {exc}") from None
        return value

    @field_validator("cad_webhook_events")
    @classmethod
    def _cad_events(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(CAD_EVENTS))
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not an event; choose from {', '.join(CAD_EVENTS)}")
        return value

    @field_validator("location_bounds")
    @classmethod
    def _bounds(cls, value: list[float]) -> list[float]:
        if not value:
            return value
        if len(value) != 4:
            raise ValueError("must be [south, west, north, east] or []")
        south, west, north, east = value
        if not (-90 <= south < north <= 90 and -180 <= west < east <= 180):
            raise ValueError("must be [south, west, north, east] with south < north, west < east")
        return value

    @field_validator(*SMS_TEMPLATES)
    @classmethod
    def _sms_template(cls, value: str) -> str:
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as exc:
            raise ValueError(f"is not a valid template: {exc}") from None
        if "link" not in fields:
            raise ValueError("must contain {link}")
        if fields - {"link", "force_name"}:
            raise ValueError("may only use the placeholders {force_name} and {link}")
        return value

    @field_validator("trial_block_sizes")
    @classmethod
    def _block_sizes(cls, value: list[int]) -> list[int]:
        for size in value:
            if size < 2 or size % 2 or size > 20:
                raise ValueError(f"{size} is not an even block size from 2 to 20")
        return value

    @field_validator("appointment_hours")
    @classmethod
    def _appointment_hours(cls, value: dict[str, str]) -> dict[str, str]:
        hours: dict[str, str] = {}
        for day, span in value.items():
            key = day.strip().lower()[:3]
            if key not in WEEKDAYS or day.strip().lower() not in (key, FULL_DAYS[key]):
                raise ValueError(f"{day!r} is not a weekday (mon, tue, ... sun)")
            span = span.strip().lower()
            if span in ("", "closed"):
                continue
            match = HOURS_RE.fullmatch(span)
            if not match or (match[3] == "24" and match[4] != "00"):
                raise ValueError(f"{day}: {span!r} is not HH:MM-HH:MM (or closed)")
            if (match[1], match[2]) >= (match[3], match[4]):
                raise ValueError(f"{day}: {span!r} closes before it opens")
            hours[key] = span
        return hours

    @model_validator(mode="after")
    def _notify_adapter_needs(self) -> Settings:
        needs = {
            "govuk_notify": ("notify_api_key", "notify_template_id"),
            "webhook": ("notify_webhook_url", "notify_webhook_secret"),
        }.get(self.notify_adapter, ())
        missing = [name for name in needs if getattr(self, name) is None]
        if missing:
            raise ValueError(f"notify_adapter {self.notify_adapter} needs {' and '.join(missing)}")
        return self

    @field_validator("quick_exit_url")
    @classmethod
    def _quick_exit_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an https:// (or http://) URL")
        return value

    @model_validator(mode="after")
    def _neutral(self) -> Settings:
        """One rule, one word list (``unsafe_words``): an SMS may be read over a victim's
        shoulder, so no template's own wording names the police or what happened. The
        force's name is the force's own choice, except on the RVR path, where it counts."""
        texts = [
            (name, getattr(self, name).format(force_name="", link=""))
            for name in SMS_TEMPLATES
            if name != "rvr_sms_template"
        ]
        texts += [
            ("rvr_sms_template", self.rvr_sms_template.format(force_name=self.force_name, link="")),
            ("rvr_page_title", self.rvr_page_title),
        ]
        for name, text in texts:
            word = unsafe_word(text, self.unsafe_words)
            if word:
                raise ValueError(
                    f"{name} must stay neutral (it may be read by someone else): "
                    f"it contains {word!r} (unsafe_words)"
                )
        if self.rvr_show_force_name and unsafe_word(self.force_name, self.unsafe_words):
            raise ValueError("rvr_show_force_name: the force's name contains an unsafe word")
        return self

    @model_validator(mode="after")
    def _pairs(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be set together")
        if self.turn_urls and self.turn_secret is None:
            raise ValueError("turn_urls need turn_secret (coturn's static-auth-secret)")
        if (self.cad_webhook_url is None) != (self.cad_webhook_secret is None):
            raise ValueError("cad_webhook_url and cad_webhook_secret must be set together")
        if self.upload_max_file_bytes > self.upload_max_total_bytes:
            raise ValueError("upload_max_file_bytes cannot be more than upload_max_total_bytes")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _config_file_var.get(None)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'evr.db').resolve()}"

    @property
    def effective_public_url(self) -> str:
        if self.public_url:
            return self.public_url
        return f"https://{socket.gethostname()}:{self.port}"

    @property
    def tls_paths(self) -> tuple[Path, Path]:
        if self.tls_cert is not None and self.tls_key is not None:
            return self.tls_cert, self.tls_key
        return self.data_dir / "tls" / "cert.pem", self.data_dir / "tls" / "key.pem"

    @property
    def effective_master_key_file(self) -> Path:
        return self.master_key_file or self.data_dir / "keys" / "master.key"

    @property
    def effective_signing_key_file(self) -> Path:
        return self.signing_key_file or self.data_dir / "keys" / "signing.pem"

    @property
    def tls_is_default(self) -> bool:
        return self.tls_cert is None


def unsafe_word(text: str, words: list[str]) -> str | None:
    """The first of ``words`` that ``text`` contains as a whole word (any case), else None."""
    for word in words:
        if word.strip() and re.search(rf"(?<!\w){re.escape(word.strip())}(?!\w)", text, re.I):
            return word.strip()
    return None


# A bad secret's value is never echoed in the error.
SECRET_SETTINGS = frozenset(
    name for name, field in Settings.model_fields.items() if "SecretStr" in str(field.annotation)
)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read settings, raising ``SettingsError`` that names the bad setting."""
    if config_file is None and DEFAULT_CONFIG_FILE.is_file():
        config_file = DEFAULT_CONFIG_FILE
    if config_file is not None and not config_file.is_file():
        raise SettingsError(f"config file {config_file}: not found")
    token = _config_file_var.set(config_file)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc, config_file)) from None
    except (OSError, ValueError) as exc:
        raise SettingsError(f"config file {config_file}: {exc}") from None
    finally:
        _config_file_var.reset(token)


def _describe(exc: ValidationError, config_file: Path | None) -> str:
    lines = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "settings"
        env = f"EVR_{name.upper()}"
        source = f" (environment variable {env})" if env in os.environ else ""
        if not source and config_file is not None:
            source = f" (in {config_file} or the default)"
        value = error.get("input")
        secret = name in SECRET_SETTINGS
        shown = "" if isinstance(value, dict) or secret else f": got {value!r}"
        lines.append(f"invalid setting {name}{source}: {error['msg']}{shown}")
    return "\n".join(lines)
