"""The witness statement (MG11-style), one row per version; a signed version never changes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from appliance.models.base import now_field, time_field


class StatementState(StrEnum):
    DRAFT = "draft"  # the officer is typing it
    SENT = "sent"  # on the caller's phone to read and sign
    CHANGES_REQUESTED = "changes_requested"  # the caller asked for a change
    SIGNED = "signed"  # signed, rendered to PDF: frozen for good


class SignedBy(StrEnum):
    """How the caller signed: a drawn image, or their typed name with an explicit
    confirmation (WCAG 2.5.7: a caller who cannot drag a finger can still sign)."""

    DRAWN = "drawn"
    TYPED = "typed"


class Statement(SQLModel, table=True):
    __tablename__ = "statements"
    __table_args__ = (UniqueConstraint("incident_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    call_id: int | None = Field(default=None, foreign_key="calls.id")
    version: int
    state: str = Field(default=StatementState.DRAFT.value, max_length=24)
    witness_name: str = Field(default="", max_length=120)
    witness_age: str = Field(default="", max_length=32)
    witness_occupation: str = Field(default="", max_length=120)
    account: str = Field(default="", sa_column=Column(Text, nullable=False))
    declaration: str = Field(sa_column=Column(Text, nullable=False))
    officer_id: int = Field(foreign_key="users.id")
    created_at: datetime = now_field()
    updated_at: datetime = now_field()
    sent_at: datetime | None = time_field()
    change_request: str = Field(default="", max_length=2000)
    signed_at: datetime | None = time_field()
    signed_name: str = Field(default="", max_length=120)
    # The language the caller read it in (appliance/i18n.py), recorded when it is sent.
    language: str = Field(default="en", max_length=16, sa_column_kwargs={"server_default": "en"})
    signed_by: str = Field(default="", max_length=8)  # SignedBy once signed
    content_sha256: str = Field(default="", max_length=64)
    signature_path: str = Field(default="", max_length=512)
    pdf_path: str = Field(default="", max_length=512)
    pdf_sha256: str = Field(default="", max_length=64)
    pdf_size_bytes: int = 0
