"""Every file kept as evidence, sealed: its wrapped data key, its hash, its marks.

One row per file, whatever it is (a recording, a snapshot, an upload, a statement),
so sealing, verifying, marking, retention and export work the same way for all.
Destroying ``wrapped_key`` makes the file unreadable for good; the row stays as a
tombstone with the hash.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel

from appliance.models.base import now_field, time_field


class FileKind(StrEnum):
    RECORDING = "recording"
    SNAPSHOT = "snapshot"
    UPLOAD = "upload"
    STATEMENT = "statement"


class FileStatus(StrEnum):
    WRITING = "writing"
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"  # a recording cut short (crash, full disk): kept as written
    DELETED = "deleted"


class EvidenceFile(SQLModel, table=True):
    __tablename__ = "evidence_files"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16, index=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    # Relative to the data dir, so a restored box on another path still finds it.
    path: str = Field(max_length=500, unique=True)
    wrapped_key: str | None = Field(default=None, max_length=200)
    master_key_id: str = Field(max_length=16, index=True)
    status: str = Field(default=FileStatus.WRITING.value, max_length=16, index=True)
    sha256: str = Field(default="", max_length=64)
    size_bytes: int | None = Field(default=None, sa_column=Column(BigInteger()))
    created_at: datetime = now_field()
    evidential: bool = False
    exhibit_ref: str = Field(default="", max_length=40)
    review_at: datetime | None = time_field()
    legal_hold: bool = False
    marked_by_id: int | None = Field(default=None, foreign_key="users.id")
    deleted_at: datetime | None = time_field()
    deleted_reason: str = Field(default="", max_length=64)
