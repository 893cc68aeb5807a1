"""A caller's file sent in chunks, so a photo or video survives a dropped mobile connection.

Our own strict protocol rather than tus: the page declares the file (name, type, size,
SHA-256) and gets a session bound to its link and its phone; it then sends the file in
order, one chunk of at most ``CHUNK_BYTES`` at the confirmed offset with the chunk's own
SHA-256. Each chunk is checked and sealed in a file of its own as it arrives (never clear
on disk; the session's data key is kept wrapped by the keyring) and only then counted, so
a chunk cut off mid-way, sent twice, out of order, too long or altered is refused and
loses nothing already confirmed. When the last chunk lands the chunks are read back in
order into ``uploads.receive``: the file is sniffed, checked and hashed exactly as a
one-shot upload, and kept only if its SHA-256 is the one declared. A session left
alone for the resume window (``upload_resume_hours``) expires and its chunks are deleted.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, col, delete, select

from appliance.models import Call, Invite, UploadSession, utcnow
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.evidence.master_key import Keyring
from appliance.services.intake import uploads
from appliance.services.intake.uploads import Limits, UploadRefused, Usage, human_size
from media.sealed import new_data_key, open_bytes, seal_bytes

CHUNK_BYTES = 1024 * 1024
"""The most one chunk may carry: small enough to resend cheaply on a bad line."""
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class ChunkRefused(Exception):
    """A declaration or chunk not accepted; ``status`` is the HTTP answer, the message
    is for the caller, and nothing already confirmed is lost."""

    def __init__(self, message: str, reason: str, status: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Declared:
    name: str
    content_type: str
    size: int
    sha256: str


def chunks_dir(data_dir: Path, upload: UploadSession) -> Path:
    """Where a session's sealed chunks wait, inside the incident's evidence folder."""
    return uploads.uploads_dir(data_dir, upload.incident_id) / f".session-{upload.public_id}"


def _open_sessions(session: Session, invite: Invite, now: datetime) -> Usage:
    count, total = session.exec(
        select(
            func.count(col(UploadSession.id)),
            func.coalesce(func.sum(UploadSession.total_bytes), 0),
        ).where(UploadSession.invite_id == invite.id, UploadSession.expires_at > now)
    ).one()
    return Usage(int(count), int(total))


def begin(
    session: Session,
    keyring: Keyring,
    call: Call,
    invite: Invite,
    device_hash: str,
    declared: Declared,
    limits: Limits,
    source: str,
) -> UploadSession:
    """The session for a declared file: the open one if this phone already declared the
    same file on this link (the page reloaded), else a new one, refused if the file
    with what the link has received and what is already under way would pass a limit."""
    now = utcnow()
    name = uploads.sanitise_name(declared.name)
    if not SHA256_HEX.fullmatch(declared.sha256) or declared.size < 1:
        raise ChunkRefused("The file's size and SHA-256 were not declared.", "declaration", 400)
    existing = session.exec(
        select(UploadSession).where(
            UploadSession.invite_id == invite.id,
            UploadSession.device_hash == device_hash,
            UploadSession.sha256 == declared.sha256,
            UploadSession.total_bytes == declared.size,
            UploadSession.expires_at > now,
        )
    ).first()
    if existing is not None:
        return existing
    if declared.size > limits.max_file_bytes:
        raise ChunkRefused(
            f"“{name}” is larger than {human_size(limits.max_file_bytes)}, the most one "
            "file may be. Nothing of it was kept.",
            "file_too_large",
            413,
        )
    session.exec(select(Call).where(Call.id == call.id).with_for_update()).one()
    used = uploads.usage(session, invite)
    pending = _open_sessions(session, invite, now)
    if used.files + pending.files >= limits.max_files:
        raise ChunkRefused(
            f"This link takes at most {limits.max_files} files. “{name}” was not kept.",
            "too_many_files",
            413,
        )
    if used.total_bytes + pending.total_bytes + declared.size > limits.max_total_bytes:
        left = max(limits.max_total_bytes - used.total_bytes - pending.total_bytes, 0)
        raise ChunkRefused(
            f"“{name}” would take this link past its limit of "
            f"{human_size(limits.max_total_bytes)} in all ({human_size(left)} left). "
            "Nothing of it was kept.",
            "total_too_large",
            413,
        )
    upload = UploadSession(
        public_id=secrets.token_hex(16),
        incident_id=invite.incident_id,
        invite_id=invite.id or 0,
        device_hash=device_hash,
        original_name=name,
        declared_type=declared.content_type[:100],
        total_bytes=declared.size,
        sha256=declared.sha256,
        confirmed_bytes=0,
        wrapped_key=keyring.wrap(new_data_key()),
        created_at=now,
        expires_at=now + limits.resume_window,
    )
    session.add(upload)
    session.flush()
    audit.record(
        session,
        Actor("caller", source),
        "upload.session_begun",
        object_type="call",
        object_id=call.public_id,
        detail={"session": upload.public_id, "bytes": declared.size, "sha256": declared.sha256},
    )
    return upload


def find(session: Session, invite: Invite, device_hash: str, public_id: str) -> UploadSession:
    """A session of this link declared by this phone, still open; anything else is
    refused alike (404), so another link or phone learns nothing of it."""
    upload = session.exec(select(UploadSession).where(UploadSession.public_id == public_id)).first()
    if (
        upload is None
        or upload.invite_id != invite.id
        or not secrets.compare_digest(upload.device_hash, device_hash)
        or upload.expires_at <= utcnow()
    ):
        raise ChunkRefused(
            "This upload is not known here (it may have expired): choose the file again.",
            "unknown_session",
            404,
        )
    return upload


def check_chunk(upload: UploadSession, offset: int, length: int | None) -> None:
    """Refuse, before reading any of it, a chunk that is not the next one or too long."""
    if offset != upload.confirmed_bytes:
        raise ChunkRefused(
            f"This part starts at byte {offset}; the next expected is {upload.confirmed_bytes}.",
            "offset",
            409,
        )
    if length is not None and length > min(CHUNK_BYTES, upload.total_bytes - offset):
        raise ChunkRefused("This part is longer than allowed.", "chunk_too_large", 413)


async def store_chunk(
    data_dir: Path, keyring: Keyring, upload: UploadSession, data: bytes, sha256: str
) -> None:
    """Check a whole chunk against its declared hash and seal it under its offset.

    Written to a temporary name and renamed: a chunk file is either whole or absent.
    Counting it (``confirm``) is the caller's next step; a chunk sealed but never
    counted is overwritten when the page sends it again.
    """
    if len(data) == 0 or len(data) > min(CHUNK_BYTES, upload.total_bytes - upload.confirmed_bytes):
        raise ChunkRefused("This part is empty or longer than allowed.", "chunk_too_large", 413)
    if hashlib.sha256(data).hexdigest() != sha256.lower():
        raise ChunkRefused(
            "This part arrived altered (its SHA-256 does not match): send it again.",
            "chunk_hash",
            422,
        )
    folder = chunks_dir(data_dir, upload)
    final = folder / f"{upload.confirmed_bytes:016d}.chunk"
    temp = folder / f".{secrets.token_hex(6)}.partial"

    def write() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            seal_bytes(temp, keyring.unwrap(upload.wrapped_key), data)
            temp.replace(final)
        finally:
            temp.unlink(missing_ok=True)

    await asyncio.to_thread(write)


def confirm(
    session: Session, public_id: str, offset: int, length: int, resume_window: timedelta
) -> UploadSession:
    """Count a sealed chunk, only if nothing was counted since it was checked (two
    requests carrying the same chunk: the second is refused as out of order); the
    session then waits ``resume_window`` for the next."""
    upload = session.exec(
        select(UploadSession).where(UploadSession.public_id == public_id).with_for_update()
    ).one()
    if upload.confirmed_bytes != offset:
        raise ChunkRefused(
            f"The next part expected starts at byte {upload.confirmed_bytes}.", "offset", 409
        )
    upload.confirmed_bytes = offset + length
    upload.expires_at = utcnow() + resume_window
    session.add(upload)
    return upload


async def plain_chunks(
    data_dir: Path, keyring: Keyring, upload: UploadSession
) -> AsyncIterator[bytes]:
    """The confirmed chunks' clear bytes in order, one chunk in memory at a time."""
    key = keyring.unwrap(upload.wrapped_key)
    folder = chunks_dir(data_dir, upload)
    offset = 0
    while offset < upload.confirmed_bytes:
        data = await asyncio.to_thread(open_bytes, folder / f"{offset:016d}.chunk", key)
        if not data:
            raise ChunkRefused("A part of this file is missing.", "missing_chunk", 409)
        yield data
        offset += len(data)


def check_whole(upload: UploadSession, received: uploads.Received) -> None:
    """The file put back together is the one declared, or it is refused."""
    if received.size_bytes != upload.total_bytes or received.sha256 != upload.sha256:
        raise UploadRefused(
            f"“{upload.original_name}” did not arrive as your phone described it "
            "(its SHA-256 differs). Nothing of it was kept: send it again.",
            "file_hash",
        )


def close(session: Session, data_dir: Path, public_id: str) -> None:
    """The session is done (kept or refused whole): its row and chunks go."""
    upload = session.exec(select(UploadSession).where(UploadSession.public_id == public_id)).first()
    if upload is None:
        return
    shutil.rmtree(chunks_dir(data_dir, upload), ignore_errors=True)
    session.delete(upload)


def expire(session: Session, data_dir: Path, now: datetime | None = None) -> int:
    """Delete the sessions left alone past their time, and their chunks; how many."""
    now = now or utcnow()
    stale = list(session.exec(select(UploadSession).where(UploadSession.expires_at <= now)).all())
    for upload in stale:
        shutil.rmtree(chunks_dir(data_dir, upload), ignore_errors=True)
    if stale:
        session.exec(delete(UploadSession).where(col(UploadSession.id).in_([u.id for u in stale])))
    return len(stale)
