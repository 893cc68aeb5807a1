"""Rapid Video Response: the RVR record of an incident, its DASH checklists and disclosures.

A domestic abuse caller may be watched by the person who harms them, so the RVR record
keeps what was checked before the link went (the safety questions), what was agreed on
the call (a code word, that the caller is alone and safe) and whether the call had to
stop for an emergency call-back.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from appliance.models.base import now_field, time_field

RISK_LEVELS = ("standard", "medium", "high")
DASH_ANSWERS = ("yes", "no", "not_known")
DISCLOSURE_KINDS = {
    "right_to_ask_request": "Right to ask: request received",
    "right_to_know_request": "Right to know: police-led application started",
    "disclosure_made": "Disclosure made",
    "disclosure_refused": "Disclosure considered and not made",
}


class RvrCase(SQLModel, table=True):
    """One per RVR incident: safety checks, the transfer, and safety on the call."""

    __tablename__ = "rvr_cases"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", unique=True)
    safety_answers: dict[str, bool] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    safety_passed: bool | None = None
    safety_by_id: int | None = Field(default=None, foreign_key="users.id")
    safety_at: datetime | None = time_field()
    transferred_at: datetime | None = time_field()
    transfer_call_id: int | None = Field(default=None, foreign_key="calls.id")
    caller_safe_at: datetime | None = time_field()
    caller_safe_by_id: int | None = Field(default=None, foreign_key="users.id")
    code_word: str = Field(default="", max_length=64)
    not_safe_at: datetime | None = time_field()
    not_safe_by_id: int | None = Field(default=None, foreign_key="users.id")
    callback_needed: bool = False


class DashAssessment(SQLModel, table=True):
    """One completed DASH checklist: answers by question id, the officer's risk level."""

    __tablename__ = "dash_assessments"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    questions_version: str = Field(max_length=64)
    answers: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    notes: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    yes_count: int
    not_known_count: int
    risk_level: str = Field(max_length=16)
    marac_referral: bool
    by_id: int = Field(foreign_key="users.id")
    at: datetime = now_field()


class Disclosure(SQLModel, table=True):
    """A Clare's Law (Domestic Violence Disclosure Scheme) request or disclosure."""

    __tablename__ = "dvds_disclosures"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    kind: str = Field(max_length=32)
    subject: str = Field(default="", max_length=200)
    notes: str = Field(default="", max_length=4000)
    by_id: int = Field(foreign_key="users.id")
    at: datetime = now_field()
