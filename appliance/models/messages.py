"""Messages the box sends to callers (SMS invites), kept until delivered or given up.

A row is the outbox and the delivery record at once: the dispatcher picks up rows
that are pending or retrying and due, so nothing queued is lost across a restart.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from appliance.models.base import now_field, time_field


class MessageStatus(StrEnum):
    PENDING = "pending"  # queued, not tried yet
    RETRYING = "retrying"  # tried, the gateway could not take it; tried again at next_attempt_at
    STORED = "stored"  # the outbox adapter kept it for someone to pass on
    SENT = "sent"  # the gateway accepted it
    FAILED = "failed"  # refused, or given up after the last attempt
    CANCELLED = "cancelled"  # withdrawn before it was sent (a moved or cancelled appointment)


UNSENT_STATES = frozenset({MessageStatus.PENDING, MessageStatus.RETRYING})
# What a message is for: only invites (a link to act on) count as invites in the metrics.
PURPOSES = ("invite", "reminder", "cancellation", "survey", "notice")


class OutboundMessage(SQLModel, table=True):
    __tablename__ = "outbound_messages"
    __table_args__ = (Index("ix_outbound_messages_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int | None = Field(default=None, foreign_key="incidents.id", index=True)
    call_public_id: str | None = Field(default=None, max_length=32, foreign_key="calls.public_id")
    channel: str = Field(default="sms", max_length=16)
    purpose: str = Field(
        default="invite", max_length=16, sa_column_kwargs={"server_default": "invite"}
    )
    to_phone: str = Field(max_length=20)
    body: str = Field(max_length=1000)
    reference: str = Field(max_length=64)
    status: str = Field(default=MessageStatus.PENDING.value, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime | None = time_field()
    last_error: str = Field(default="", max_length=500)
    provider_id: str | None = Field(default=None, max_length=128)
    created_at: datetime = now_field()
    sent_at: datetime | None = time_field()
