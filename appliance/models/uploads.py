"""What a caller sends through an upload or location invite.

Each uploaded file is one row, written only once the file is whole and hashed; a
shared location is one row per invite (the unique ``invite_id`` makes "once" hold at
the database too).
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
