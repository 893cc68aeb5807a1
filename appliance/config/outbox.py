"""What leaves the box: the SMS gateway and its wording, the force's CAD."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

from appliance.config.checks import usable_ca_file
from appliance.config.defaults import (
    CAD_EVENTS,
    DEFAULT_SMS_INVITE,
    DEFAULT_SMS_LOCATION,
    DEFAULT_SMS_UPLOAD,
    NOTIFY_KEY_RE,
    UUID_RE,
)


class OutboxSettings(BaseModel):
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
    sms_max_segments: int = Field(
        3,
        ge=1,
        le=10,
        description="The most SMS parts a message may need (160 characters in one, 153 a part "
        "once split; 70 and 67 when a character outside GSM-7 makes it UCS-2, as Welsh ŵ or "
        "Arabic script do): start-up refuses a template that, in any offered language, with "
        "the force's name and the longest link, would need more.",
    )
    sms_invite_template: str = Field(
        DEFAULT_SMS_INVITE,
        min_length=10,
        max_length=300,
        description="The invite SMS: {force_name} and {link} are filled in. Neutral wording "
        "only (it may be read by someone else): checked against unsafe_words.",
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
        return usable_ca_file(value)

    @field_validator("cad_webhook_events")
    @classmethod
    def _cad_events(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(CAD_EVENTS))
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not an event; choose from {', '.join(CAD_EVENTS)}")
        return value
