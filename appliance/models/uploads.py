"""What a caller sends through an upload or location invite.

Each uploaded file is one row, written only once the file is whole and hashed; a
shared location is one row per invite (the unique ``invite_id`` makes "once" hold at
the database too). A position sent during a video call is a ``LocationFix``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel

from appliance.models.base import now_field


class UploadedItem(SQLModel, table=True):
    __tablename__ = "uploaded_items"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    invite_id: int = Field(foreign_key="invites.id", index=True)
    original_name: str = Field(max_length=200)
    detected_type: str = Field(max_length=32)
    # PostgreSQL's INTEGER stops at 2 GiB; a video may be larger.
    size_bytes: int = Field(sa_column=Column(BigInteger(), nullable=False))
    sha256: str = Field(max_length=64)
    path: str = Field(max_length=500)
    received_at: datetime = now_field()


class SharedLocation(SQLModel, table=True):
    __tablename__ = "shared_locations"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    invite_id: int = Field(foreign_key="invites.id", unique=True)
    latitude: float
    longitude: float
    accuracy_m: float
    shared_at: datetime = now_field()
    # The National Grid reference as computed when shared (OSTN15, appliance/grid.py);
    # None outside Great Britain, and for a location shared before the box computed them.
    easting: float | None = None
    northing: float | None = None


class LocationFix(SQLModel, table=True):
    """One position of the caller during a video call: the first, and then, if the
    caller agreed to it being kept up to date, one each time their phone moved (at most
    one per ``location_update_seconds``). Together they are the incident's track. The
    grid reference is kept as computed when the fix arrived (OSTN15, ``appliance/grid.py``),
    ``None`` outside Great Britain."""

    __tablename__ = "location_fixes"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    call_id: int = Field(foreign_key="calls.id", index=True)
    latitude: float
    longitude: float
    accuracy_m: float
    easting: float | None = None
    northing: float | None = None
    fixed_at: datetime = now_field()


class UploadSession(SQLModel, table=True):
    """A file a caller's page is sending in chunks (``services/intake/resumable.py``).

    Bound to its link and the phone that declared it; ``confirmed_bytes`` is what has
    arrived, checked and sealed, so the page resumes from there after a drop or a reload.
    The data key that seals its chunks is kept wrapped by the keyring, as evidence's is.
    """

    __tablename__ = "upload_sessions"

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=32, unique=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    invite_id: int = Field(foreign_key="invites.id", index=True)
    device_hash: str = Field(max_length=64)
    original_name: str = Field(max_length=200)
    declared_type: str = Field(max_length=100)
    total_bytes: int = Field(sa_column=Column(BigInteger(), nullable=False))
    sha256: str = Field(max_length=64)
    confirmed_bytes: int = Field(sa_column=Column(BigInteger(), nullable=False, default=0))
    wrapped_key: str = Field(max_length=200)
    created_at: datetime = now_field()
    expires_at: datetime = now_field()
