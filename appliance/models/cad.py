"""Messages to the force's CAD: each outbound webhook kept until the CAD takes it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from appliance.models.base import now_field, time_field


class DeliveryState(StrEnum):
    PENDING = "pending"  # waiting for its first or next attempt
    DELIVERED = "delivered"  # the CAD answered 2xx
    FAILED = "failed"  # gave up after the last attempt; can be sent again by hand


class CadDelivery(SQLModel, table=True):
    """One event for the CAD. ``body`` is the exact JSON signed and sent on every attempt."""

    __tablename__ = "cad_deliveries"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=36, unique=True)
    event: str = Field(max_length=48, index=True)
    incident_id: int | None = Field(default=None, foreign_key="incidents.id", index=True)
    body: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(default=DeliveryState.PENDING.value, max_length=16, index=True)
    attempts: int = 0
    created_at: datetime = now_field()
    next_attempt_at: datetime | None = time_field()
    last_attempt_at: datetime | None = time_field()
    last_status: int | None = None
    last_error: str = Field(default="", max_length=500)
    delivered_at: datetime | None = time_field()
