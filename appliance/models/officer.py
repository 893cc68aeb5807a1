"""What the officer records about an incident: THRIVE (versioned), notes and safeguarding."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from appliance.models.base import now_field

THRIVE_PARTS = ("threat", "harm", "risk", "investigation", "vulnerability", "engagement")
THRIVE_RATINGS = ("low", "medium", "high")


class ThriveAssessment(SQLModel, table=True):
    """One version of an incident's THRIVE: a change adds a version, never edits one."""

    __tablename__ = "thrive_assessments"
    __table_args__ = (UniqueConstraint("incident_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    version: int
    ratings: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    notes: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    by_id: int = Field(foreign_key="users.id")
    at: datetime = now_field()


class IncidentNote(SQLModel, table=True):
    """A time-stamped note, or a safeguarding referral (to whom, why)."""

    __tablename__ = "incident_notes"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    kind: str = Field(max_length=16)
    referred_to: str = Field(default="", max_length=120)
    text: str = Field(max_length=4000)
    by_id: int = Field(foreign_key="users.id")
    at: datetime = now_field()


DRAFT_FORMS = ("note", "thrive")


class OfficerDraft(SQLModel, table=True):
    """A form the officer is still typing (a note, THRIVE), saved as they type so a reload
    or a lost page keeps it. One per author, incident and form; it is theirs alone, and
    goes when the form is sent. Not a record: the note or THRIVE version is."""

    __tablename__ = "officer_drafts"
    __table_args__ = (UniqueConstraint("user_id", "incident_id", "form"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    form: str = Field(max_length=16)
    fields: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    saved_at: datetime = now_field()
