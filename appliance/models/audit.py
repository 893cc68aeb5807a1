"""The append-only audit trail: each event carries the hash of the one before."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from appliance.models.base import now_field


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(unique=True, index=True)
    at: datetime = now_field()
    actor: str = Field(max_length=128)
    action: str = Field(max_length=64, index=True)
    object_type: str = Field(default="", max_length=64)
    object_id: str = Field(default="", max_length=128)
    source: str = Field(default="", max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
