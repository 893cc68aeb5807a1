"""A guest on a live call (interpreter, second officer, supervisor) by a one-call link."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from appliance.models.base import now_field, time_field

GUEST_ROLES = {
    "interpreter": "Interpreter",
    "second_officer": "Second officer",
    "supervisor": "Supervisor",
}


class GuestInvite(SQLModel, table=True):
    """Only the SHA-256 of the link's token is kept; the link dies with its call."""

    __tablename__ = "guest_invites"

    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(foreign_key="calls.id", index=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    role: str = Field(max_length=32)
    name: str = Field(max_length=120)
    created_by_id: int = Field(foreign_key="users.id")
    created_at: datetime = now_field()
    device_hash: str | None = Field(default=None, max_length=64)
    joined_at: datetime | None = time_field()
    removed_at: datetime | None = time_field()
    removed_by_id: int | None = Field(default=None, foreign_key="users.id")
