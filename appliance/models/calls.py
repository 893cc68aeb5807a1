"""Invites, calls, and what a call leaves behind: chat, snapshots, the recording."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from appliance.models.base import UTCDateTime, now_field, time_field


class CallState(StrEnum):
    INVITED = "invited"
    WAITING = "waiting"
    CONNECTED = "connected"
    ENDED = "ended"
    EXPIRED = "expired"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATES = frozenset(
    {CallState.ENDED, CallState.EXPIRED, CallState.FAILED, CallState.CANCELLED}
)


class Invite(SQLModel, table=True):
    """A personal link. Only the SHA-256 of its token is kept."""

    __tablename__ = "invites"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    kind: str = Field(default="video", max_length=16)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    created_by_id: int = Field(foreign_key="users.id")
    created_at: datetime = now_field()
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    opens_at: datetime | None = time_field()  # a booked appointment's link: not before
    revoked_at: datetime | None = time_field()
    opened_at: datetime | None = time_field()
    # The caller's language (appliance/i18n.py): the handler's choice, or the caller's
    # own switch on the page; every page, SMS and statement of the link is written in it.
    language: str = Field(default="en", max_length=16, sa_column_kwargs={"server_default": "en"})


class Call(SQLModel, table=True):
    __tablename__ = "calls"

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=32, unique=True, index=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    # Several calls share an invite only through rejoins (``rejoin_of_id``); the
    # newest is the one the link leads to.
    invite_id: int = Field(foreign_key="invites.id", index=True)
    state: str = Field(default=CallState.INVITED.value, max_length=16, index=True)
    created_at: datetime = now_field()
    waiting_at: datetime | None = time_field()
    connected_at: datetime | None = time_field()
    ended_at: datetime | None = time_field()
    end_reason: str = Field(default="", max_length=64)
    handler_id: int | None = Field(default=None, foreign_key="users.id")
    caller_device_hash: str | None = Field(default=None, max_length=64)
    consent_video: bool = False
    consent_recording: bool = False
    consent_location: bool = False
    # The caller let the box keep their position up to date during the call (a track of
    # ``LocationFix`` rows), not just the first fix.
    consent_location_updates: bool = False
    consent_at: datetime | None = time_field()
    notice_version: str = Field(default="", max_length=32)
    caller_latitude: float | None = None
    caller_longitude: float | None = None
    caller_location_accuracy_m: float | None = None
    # The call the caller ended by mistake and came back from (docs/signalling.md);
    # unique: a call is rejoined at most once, two taps on "Rejoin" make one call.
    rejoin_of_id: int | None = Field(default=None, foreign_key="calls.id", unique=True, index=True)
    # While set, the caller who ended this call may rejoin until then, and the call's
    # end (the CAD's call.ended, the survey offer) is held back until the window closes.
    rejoin_until: datetime | None = time_field()


class ChatMessage(SQLModel, table=True):
    __tablename__ = "call_messages"

    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(foreign_key="calls.id", index=True)
    sender: str = Field(max_length=16)
    sender_user_id: int | None = Field(default=None, foreign_key="users.id")
    body: str = Field(max_length=2000)
    sent_at: datetime = now_field()


class Snapshot(SQLModel, table=True):
    __tablename__ = "snapshots"

    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(foreign_key="calls.id", index=True)
    taken_by_id: int = Field(foreign_key="users.id")
    taken_at: datetime = now_field()
    path: str = Field(max_length=500)
    sha256: str = Field(max_length=64)
    width: int
    height: int
    size_bytes: int
    # What the officer says the picture shows: metadata, so an original's bytes never change.
    caption: str = Field(default="", max_length=200)
    # A marked-up copy names the snapshot it was drawn on, and keeps what was drawn.
    original_id: int | None = Field(default=None, foreign_key="snapshots.id", index=True)
    markup: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))


class Recording(SQLModel, table=True):
    __tablename__ = "recordings"

    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(foreign_key="calls.id", index=True)
    path: str = Field(max_length=500)
    status: str = Field(default="recording", max_length=16)
    started_at: datetime = now_field()
    ended_at: datetime | None = time_field()
    duration_s: float | None = None
    video_codec: str = Field(default="", max_length=16)
    audio_codecs: str = Field(default="", max_length=64)
    size_bytes: int | None = None
    sha256: str = Field(default="", max_length=64)
