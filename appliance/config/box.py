"""The box itself: its name and address, where it keeps things, its logs and workers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from appliance.i18n import N_


class BoxSettings(BaseModel):
    force_name: str = Field(
        "EVR Appliance",
        min_length=1,
        max_length=120,
        description="The force's name, shown on every page a caller or handler sees.",
    )
    controller_name: str | None = Field(
        None,
        max_length=200,
        description="The data controller named in the privacy notice (the chief constable "
        "of the force, usually). Default: the force's name.",
    )
    dpo_contact: str = Field(
        N_("The force's Data Protection Officer, through the contact details on its website"),
        min_length=5,
        max_length=500,
        description="How a caller reaches the force's Data Protection Officer, shown in the "
        "privacy notice.",
    )
    accessibility_contact: str = Field(
        N_("The force's contact centre, through the contact details on its website"),
        min_length=5,
        max_length=500,
        description="Where a caller reports an accessibility problem or asks for a page in "
        "another format, shown in the accessibility statement (/accessibility).",
    )
    public_url: str | None = Field(
        None,
        description="Base URL callers and handlers reach the box at, used in links. "
        "Default: https://<hostname>:<port>.",
    )
    host: str = Field("0.0.0.0", description="Address to listen on.")  # noqa: S104
    port: int = Field(8443, ge=1, le=65535, description="TCP port for HTTPS.")
    metrics_host: str = Field(
        "127.0.0.1",
        description="Address the monitoring listener (/metrics, /readyz) listens on: loopback "
        "or a LAN address only the monitoring network reaches, never the callers' side.",
    )
    metrics_port: int = Field(
        8444,
        ge=1,
        le=65535,
        description="TCP port of the monitoring listener (HTTPS, the box's certificate).",
    )
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
    min_free_bytes: int = Field(
        1024**3,
        ge=0,
        description="/readyz fails when the data dir has less free space than this.",
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

    @model_validator(mode="after")
    def _metrics_apart(self) -> BoxSettings:
        if self.metrics_port == self.port:
            raise ValueError(
                "metrics_port must differ from port: /metrics is not served to callers"
            )
        return self

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
