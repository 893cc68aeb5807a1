"""Booked video appointments: a slot in the video officers' diary, with its link.

Times are stored in UTC; the people who book and attend them think in Europe/London
wall-clock time, which ``services.intake.appointments`` converts to and from.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from appliance.models.base import UTCDateTime, now_field


class AppointmentState(StrEnum):
    BOOKED = "booked"
    MOVED = "moved"  # booked, then moved to another slot: still on
    CANCELLED = "cancelled"
    DONE = "done"


ACTIVE_APPOINTMENT_STATES = frozenset({AppointmentState.BOOKED, AppointmentState.MOVED})


class Appointment(SQLModel, table=True):
    __tablename__ = "appointments"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    # The call and invite of the current slot (a move makes a new link).
    call_public_id: str = Field(max_length=32, foreign_key="calls.public_id")
    invite_id: int = Field(foreign_key="invites.id")
    starts_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    ends_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    state: str = Field(default=AppointmentState.BOOKED.value, max_length=16, index=True)
    booked_by_id: int = Field(foreign_key="users.id")
    # The reminder SMS, cancelled when the appointment moves or is cancelled.
    reminder_message_id: int | None = Field(default=None, foreign_key="outbound_messages.id")
    created_at: datetime = now_field()
