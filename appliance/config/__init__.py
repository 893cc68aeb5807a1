"""The one settings object: flat for the operator, declared per domain.

The operator sees one ``Settings`` (``EVR_*`` names, one TOML table); its fields
are declared in this package's modules by domain (box, identity, evidence, intake,
calls, outbox, rvr, evaluation), each with its own checks; rules that span domains
are checked on ``Settings`` here. Every setting comes, in rising precedence, from
its default, the TOML file (``--config``, else ``/etc/evr/evr.toml`` when present)
and an ``EVR_*`` environment variable. ``docs/configuration.md`` documents each one; a test keeps
the two in step.
"""

from __future__ import annotations

import os
import re
import socket
import string
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from appliance import i18n, sms
from appliance.config.box import BoxSettings
from appliance.config.calls import CallsSettings
from appliance.config.defaults import DEFAULT_CONFIG_FILE, SMS_TEMPLATES
from appliance.config.evaluation import EvaluationSettings
from appliance.config.evidence import EvidenceSettings
from appliance.config.identity import IdentitySettings
from appliance.config.intake import IntakeSettings
from appliance.config.outbox import OutboxSettings
from appliance.config.rvr import RvrSettings

_config_file_var: ContextVar[Path | None] = ContextVar("evr_config_file")


class SettingsError(Exception):
    """A setting is invalid; the message names it and says what is wrong."""


class Settings(
    BoxSettings,
    IdentitySettings,
    EvidenceSettings,
    IntakeSettings,
    CallsSettings,
    OutboxSettings,
    RvrSettings,
    EvaluationSettings,
    BaseSettings,
):
    """One flat object for the operator (``EVR_*`` names, one TOML table), declared per
    domain in this package's modules; cross-domain rules are checked here."""

    model_config = SettingsConfigDict(
        env_prefix="EVR_",
        extra="forbid",
        validate_default=True,
    )

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

    @model_validator(mode="after")
    def _cad_client_port_apart(self) -> Settings:
        """The client-certificate listener has a port of its own: on the main port or the
        monitoring one, the box would fail to start (or, worse, serve the CAD API where
        no certificate is asked for)."""
        if self.cad_client_ca_file is not None and self.cad_client_port in (
            self.port,
            self.metrics_port,
        ):
            raise ValueError("cad_client_port must differ from port and metrics_port")
        return self

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

    @model_validator(mode="after")
    def _neutral(self) -> Settings:
        """One rule, one word list (``unsafe_words``): an SMS may be read over a victim's
        shoulder, so no template's own wording names the police or what happened. The
        force's name is the force's own choice, except on the RVR path, where it counts."""
        texts = [("rvr_page_title", self.rvr_page_title)]
        for code in i18n.OFFERED:
            texts += [
                (name, i18n.gettext(code, getattr(self, name)).format(force_name="", link=""))
                for name in SMS_TEMPLATES
                if name != "rvr_sms_template"
            ]
            texts.append(
                (
                    "rvr_sms_template",
                    i18n.gettext(code, self.rvr_sms_template).format(
                        force_name=self.force_name, link=""
                    ),
                )
            )
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
    def _sms_lengths(self) -> Settings:
        """Every SMS template, in every offered language, with the force's name and the
        longest link the box makes, fits ``sms_max_segments`` parts (appliance/sms.py)."""
        link = f"{self.effective_public_url}/v/{'x' * 43}"
        for code in i18n.OFFERED:
            for name in SMS_TEMPLATES:
                text = i18n.gettext(code, getattr(self, name))
                need = sms.length(text.format(force_name=self.force_name, link=link))
                if need.segments > self.sms_max_segments:
                    raise ValueError(
                        f"{name} needs {need.segments} SMS parts in {code} ({need.units} "
                        f"{need.encoding} characters with the force's name and a link), more "
                        f"than sms_max_segments ({self.sms_max_segments})"
                    )
        return self

    @model_validator(mode="after")
    def _rvr_never_surveyed(self) -> Settings:
        """RVR means no survey SMS (the survey service holds it whatever the lists say);
        a list that says otherwise is a mistake the operator should hear of at start-up."""
        missing = [c for c in self.rvr_categories if c not in self.survey_sms_skip_categories]
        if missing:
            raise ValueError(
                "survey_sms_skip_categories must hold every rvr_categories entry (an RVR "
                f"caller is never sent the survey by SMS): add {', '.join(missing)}"
            )
        return self

    @model_validator(mode="after")
    def _pairs(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be set together")
        if self.turn_urls and self.turn_secret is None:
            raise ValueError("turn_urls need turn_secret (coturn's static-auth-secret)")
        if (self.cad_webhook_url is None) != (self.cad_webhook_secret is None):
            raise ValueError("cad_webhook_url and cad_webhook_secret must be set together")
        if "evidential_outcomes" not in self.model_fields_set:
            # The default names crime_recorded: it applies where the force has that code.
            self.evidential_outcomes = [
                code for code in self.evidential_outcomes if code in self.outcome_codes
            ]
        for name in ("retention_by_outcome", "evidential_outcomes"):
            unknown = sorted(set(getattr(self, name)) - set(self.outcome_codes))
            if unknown:
                raise ValueError(f"{name}: {', '.join(unknown)} not in outcome_codes")
        unknown = sorted(set(self.retention_by_category) - set(self.incident_categories))
        if unknown:
            raise ValueError(
                f"retention_by_category: {', '.join(unknown)} not in incident_categories"
            )
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

    def require_for_serve(self) -> None:
        """What serving the public needs and other commands do not: the force's own name.
        The default would reach callers' pages and every SMS, and to a caller a link from
        an "EVR Appliance" looks like a scam; so `evr serve` refuses to start without it."""
        if "force_name" not in self.model_fields_set:
            raise SettingsError(
                "force_name is required to serve: set EVR_FORCE_NAME or force_name in the "
                "config file to the name callers know the force by (it is on every caller "
                "page and SMS)"
            )

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
