"""A responder's view-only link to one live call (an attending officer, a scenes-of-crime
officer): it receives the caller's picture and sound and sends nothing."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from appliance.models.base import now_field, time_field


class ViewerLink(SQLModel, table=True):
    """Only the SHA-256 of the link's token is kept; the link dies with its call, is bound
    to the first device that opens it, and may be revoked by the officer."""

    __tablename__ = "viewer_links"

    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(foreign_key="calls.id", index=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=120)
    created_by_id: int = Field(foreign_key="users.id")
    created_at: datetime = now_field()
    device_hash: str | None = Field(default=None, max_length=64)
    opened_at: datetime | None = time_field()
    revoked_at: datetime | None = time_field()
    revoked_by_id: int | None = Field(default=None, foreign_key="users.id")
