"""Incidents: what the public reported, with its CAD reference and grade.

Minimal for now (the call needs something to invite against); the intake work adds
eligibility, the timeline and the CAD API on top of this table.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, Column
from sqlmodel import Field, SQLModel

from appliance.models.base import now_field, time_field


class Incident(SQLModel, table=True):
    __tablename__ = "incidents"
    __table_args__ = (CheckConstraint("grade BETWEEN 1 AND 4", name="ck_incidents_grade"),)

    id: int | None = Field(default=None, primary_key=True)
    cad_reference: str = Field(max_length=64, unique=True, index=True)
    grade: int = 3
    category: str = Field(max_length=64)
    summary: str = Field(default="", max_length=2000)
    caller_name: str = Field(max_length=120)
    caller_phone: str = Field(max_length=20)
    location_text: str = Field(default="", max_length=500)
    received_at: datetime = now_field()
    created_at: datetime = now_field()
    created_by_id: int | None = Field(default=None, foreign_key="users.id")
    owner_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    status: str = Field(default="open", max_length=16)
    source: str = Field(default="ui", max_length=64)
    eligibility: str = Field(default="unknown", max_length=16)
    eligibility_answers: dict[str, bool] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    eligibility_reason: str = Field(default="", max_length=500)
    eligibility_by_id: int | None = Field(default=None, foreign_key="users.id")
    eligibility_at: datetime | None = time_field()
    outcome_code: str | None = Field(default=None, max_length=32)
    deployment_needed: bool | None = None
    outcome_by_id: int | None = Field(default=None, foreign_key="users.id")
    outcome_at: datetime | None = time_field()
    closed_at: datetime | None = time_field()
    minimised_at: datetime | None = time_field()  # personal data removed (retention)
    # The first page the caller's link showed, and how long after the incident was made.
    caller_first_screen_at: datetime | None = time_field()
    caller_first_screen_seconds: float | None = None
