"""Photos and videos a caller sends through an upload link, kept as evidence.

A file arrives as a stream and is written to a temporary name in the incident's
evidence folder while its SHA-256 is computed: it is never held in memory whole.
Its type is read from its content (magic bytes, then PyAV for what can be opened),
never from its name. Only a whole file of an accepted type, within the limits, is
renamed to its evidence name and gets a row; anything refused leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import secrets
import unicodedata
import urllib.parse
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import av
from PIL import Image, UnidentifiedImageError
from sqlalchemy import func
from sqlmodel import Session, col, select

from appliance.config import Settings
from appliance.i18n import N_
from appliance.models import Call, FileKind, Invite, UploadedItem, utcnow
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.calls import invites
from appliance.services.evidence import sealing
from appliance.services.evidence.master_key import Keyring
from media.sealed import PlainView, SealedError, SealedReader, SealedWriter, new_data_key

# Detected type -> the extension the evidence file gets (never the caller's own).
ACCEPTED = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/heic": ".heic",
    "image/heif": ".heif",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
}
ACCEPTED_NAMES = "JPEG, PNG, HEIC, MP4, MOV or WebM"
HEAD_BYTES = 64
HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"}
HEIF_BRANDS = {b"mif1", b"msf1"}
QUICKTIME_BRANDS = {b"qt  "}
MP4_BRANDS = {
    b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ",
    b"MSNV", b"dash", b"3gp4", b"3gp5", b"3gp6", b"3g2a",
}  # fmt: skip
# PyAV's container names for what the magic bytes said.
VIDEO_FORMATS = {
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
}
IMAGE_CODECS = {"image/jpeg": "mjpeg", "image/png": "png"}
HEIF_MAX_PIXELS = 100_000_000
"""The largest HEIC/HEIF image accepted (a 48-megapixel phone photo is half of it)."""


class UploadRefused(Exception):
    """A file that is not kept; the message is for the caller. ``text`` is the catalogue's
    message (appliance/i18n.py) and ``values`` fill it: ``str()`` is the English, and
    ``in_language`` the caller's."""

    def __init__(self, text: str, reason: str, **values: object) -> None:
        super().__init__(text % values)
        self.text, self.values, self.reason = text, values, reason

    def in_language(self, gettext: Callable[[str], str]) -> str:
        return gettext(self.text) % self.values


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int
    max_total_bytes: int
    max_files: int
    max_image_pixels: int = 50_000_000
    resume_window: timedelta = timedelta(hours=24)

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            settings.upload_max_file_bytes,
            settings.upload_max_total_bytes,
            settings.upload_max_files,
            settings.upload_max_image_pixels,
            timedelta(hours=settings.upload_resume_hours),
        )


@dataclass(frozen=True)
class Received:
    """A file written whole to a temporary name, not yet evidence."""

    temp_path: Path
    original_name: str
    detected_type: str
    size_bytes: int
    sha256: str
    data_key: bytes = b""


@dataclass(frozen=True)
class Usage:
    files: int
    total_bytes: int


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"  # pragma: no cover


def sniff(head: bytes) -> str | None:
    """The type the first bytes say, among those we accept; ``None`` for anything else."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in HEIC_BRANDS:
            return "image/heic"
        if brand in HEIF_BRANDS:
            return "image/heif"
        if brand in QUICKTIME_BRANDS:
            return "video/quicktime"
        if brand in MP4_BRANDS:
            return "video/mp4"
        return None
    if head.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in head[:HEAD_BYTES]:
        return "video/webm"
    return None


def _refuse_type(name: str) -> UploadRefused:
    return UploadRefused(
        N_(
            "“%(name)s” is not a photo or video we can accept (%(accepted)s). "
            "Nothing of it was kept."
        ),
        "type",
        name=name,
        accepted=ACCEPTED_NAMES,
    )


def _refuse_total(name: str, size: int, limits: Limits, left: int) -> UploadRefused:
    return UploadRefused(
        N_(
            "“%(name)s” would take this link past its limit of %(total)s in all "
            "(%(left)s left). Nothing of it was kept."
        ),
        "total_too_large",
        name=name,
        total=human_size(limits.max_total_bytes),
        left=human_size(left),
    )


def check_dimensions(path: Path, name: str, data_key: bytes, max_pixels: int) -> None:
    """Read a JPEG's or PNG's size from its header (Pillow decodes nothing on open) and
    refuse one larger than ``max_pixels`` before anything decodes it: half a megabyte of
    PNG can declare 16000×16000 pixels, a gigabyte once decoded."""
    try:
        with (
            SealedReader(path, data_key) as sealed,
            Image.open(io.BufferedReader(PlainView(sealed))) as image,
        ):
            width, height = image.size
    except Image.DecompressionBombError:
        width, height = max_pixels + 1, 1
    except (UnidentifiedImageError, OSError, ValueError, SealedError) as exc:
        raise _refuse_type(name) from exc
    if width * height > max_pixels:
        raise UploadRefused(
            N_(
                "“%(name)s” is a larger picture than this box accepts (%(megapixels)s "
                "megapixels at most). Nothing of it was kept."
            ),
            "image_too_large",
            name=name,
            megapixels=max_pixels // 1_000_000,
        )


def check_content(
    path: Path, detected: str, name: str, data_key: bytes, max_pixels: int = 50_000_000
) -> None:
    """Open what the magic bytes promised with PyAV: a video must demux with a video
    stream in the right container, a JPEG or PNG must be of a size we accept (read from
    its header) and decode. HEIC/HEIF, which PyAV does not read, has its container parsed
    instead (``check_heif``)."""
    if detected in ("image/heic", "image/heif"):
        check_heif(path, name, data_key)
        return
    if detected in IMAGE_CODECS:
        check_dimensions(path, name, data_key, max_pixels)
    try:
        with SealedReader(path, data_key) as sealed, av.open(PlainView(sealed), "r") as container:
            streams = container.streams.video
            if not streams:
                raise _refuse_type(name)
            if detected in VIDEO_FORMATS:
                if VIDEO_FORMATS[detected] not in container.format.name.split(","):
                    raise _refuse_type(name)
            elif streams[0].codec_context.name != IMAGE_CODECS[detected]:
                raise _refuse_type(name)
            else:
                next(container.decode(video=0))
    except (av.FFmpegError, StopIteration, OSError, UnicodeDecodeError, SealedError) as exc:
        raise _refuse_type(name) from exc


def check_heif(path: Path, name: str, data_key: bytes) -> None:
    """A HEIC/HEIF must be a HEIF container libheif (through pillow-heif) can parse, with
    a primary image of at most ``HEIF_MAX_PIXELS``: ``ftyp`` bytes in front of anything
    else are refused. Its HEVC picture is not decoded here: decoding is the costly and
    riskiest part of a hostile file, and staff download HEIC rather than view it in
    the browser, so the check stops at the container (docs/handler-guide.md)."""
    import pillow_heif  # loaded only when a HEIC arrives

    try:
        with SealedReader(path, data_key) as sealed:
            width, height = pillow_heif.open_heif(PlainView(sealed)).size
    except (ValueError, RuntimeError, OSError, SealedError) as exc:
        raise _refuse_type(name) from exc
    if not 0 < width * height <= HEIF_MAX_PIXELS:
        raise _refuse_type(name)


def sanitise_name(name: str | None) -> str:
    """The caller's file name as something safe to show: no folders, no control
    characters, at most 200 characters. Never used to build a path."""
    # Some clients percent-encode the name (RFC 5987 style); folders are dropped after.
    decoded = urllib.parse.unquote(name or "")
    base = unicodedata.normalize("NFC", decoded.replace("\\", "/").rsplit("/", 1)[-1])
    cleaned = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    cleaned = cleaned.lstrip(".") or "unnamed"
    return cleaned[:200]


def uploads_dir(data_dir: Path, incident_id: int) -> Path:
    """The incident's evidence folder for what callers send."""
    return data_dir / "incidents" / str(incident_id) / "uploads"


def usage(session: Session, invite: Invite) -> Usage:
    count, total = session.exec(
        select(
            func.count(col(UploadedItem.id)),
            func.coalesce(func.sum(UploadedItem.size_bytes), 0),
        ).where(UploadedItem.invite_id == invite.id)
    ).one()
    return Usage(int(count), int(total))


async def receive(
    chunks: AsyncIterator[bytes],
    folder: Path,
    original_name: str,
    limits: Limits,
    used: Usage,
) -> Received:
    """Write a stream to a temporary file in ``folder``, hashing as it goes.

    Refused (and the temporary file removed) as soon as the stream passes the
    per-file limit or what is left of the link's total, or its first bytes are not an
    accepted type; the content is then checked whole. ``keep`` checks the total again.
    """
    left = max(limits.max_total_bytes - used.total_bytes, 0)
    name = sanitise_name(original_name)
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    temp = folder / f".incoming-{secrets.token_hex(8)}.partial"
    digest = hashlib.sha256()
    size = 0
    head = b""
    detected: str | None = None
    data_key = new_data_key()
    out = await asyncio.to_thread(SealedWriter, temp, data_key)
    try:
        with out:
            async for chunk in chunks:
                size += len(chunk)
                if size > limits.max_file_bytes:
                    raise UploadRefused(
                        N_(
                            "“%(name)s” is larger than %(size)s, the most one file may be. "
                            "Nothing of it was kept."
                        ),
                        "file_too_large",
                        name=name,
                        size=human_size(limits.max_file_bytes),
                    )
                if size > left:
                    raise _refuse_total(name, size, limits, left)
                if detected is None:
                    head += chunk[: HEAD_BYTES - len(head)]
                    if len(head) >= HEAD_BYTES:
                        detected = sniff(head) or ""
                        if not detected:
                            raise _refuse_type(name)
                digest.update(chunk)
                out.write(chunk)
            if detected is None:  # shorter than HEAD_BYTES
                detected = sniff(head) if size else None
                if not detected:
                    raise _refuse_type(name)
        await asyncio.to_thread(
            check_content, temp, detected, name, data_key, limits.max_image_pixels
        )
    except BaseException:
        out.abandon()
        await asyncio.to_thread(temp.unlink, missing_ok=True)
        raise
    return Received(temp, name, detected, size, digest.hexdigest(), data_key)


def keep(
    session: Session,
    keyring: Keyring,
    call: Call,
    invite: Invite,
    received: Received,
    limits: Limits,
    source: str,
) -> tuple[UploadedItem, bool]:
    """Make a received file evidence: check the link's limits, rename it to its
    evidence name, add its row and audit it. Returns the item and whether the link
    is now spent (its file count or total reached).

    The caller of this function removes the evidence file if the session then fails
    to commit (``UploadedItem.path``), and the temporary file in every case.
    """
    # Two uploads on one link at once must not both pass the total: lock the call
    # (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers).
    session.exec(select(Call).where(Call.id == call.id).with_for_update()).one()
    used = usage(session, invite)
    if used.files >= limits.max_files:
        raise UploadRefused(
            N_(
                "This link has already received %(files)s files, the most it takes. "
                "“%(name)s” was not kept."
            ),
            "too_many_files",
            files=limits.max_files,
            name=received.original_name,
        )
    if used.total_bytes + received.size_bytes > limits.max_total_bytes:
        left = max(limits.max_total_bytes - used.total_bytes, 0)
        raise _refuse_total(received.original_name, received.size_bytes, limits, left)
    received_at = utcnow()
    final = received.temp_path.with_name(
        f"{received_at:%Y%m%dT%H%M%S%f}Z-{secrets.token_hex(4)}{ACCEPTED[received.detected_type]}"
    )
    received.temp_path.replace(final)
    item = UploadedItem(
        incident_id=invite.incident_id,
        invite_id=invite.id or 0,
        original_name=received.original_name,
        detected_type=received.detected_type,
        size_bytes=received.size_bytes,
        sha256=received.sha256,
        path=str(final),
        received_at=received_at,
    )
    session.add(item)
    session.flush()
    sealing.adopt(
        session,
        keyring,
        final,
        received.data_key,
        FileKind.UPLOAD,
        invite.incident_id,
        received.sha256,
        received.size_bytes,
    )
    audit.record(
        session,
        Actor("caller", source),
        "upload.received",
        object_type="call",
        object_id=call.public_id,
        detail={
            "item": item.id,
            "type": item.detected_type,
            "bytes": item.size_bytes,
            "sha256": item.sha256,
        },
    )
    spent = (
        used.files + 1 >= limits.max_files
        or used.total_bytes + received.size_bytes >= limits.max_total_bytes
    )
    if spent:
        invites.finish_collection(session, call, source, "upload_limit_reached")
    return item, spent


def record_refusal(session: Session, call: Call, refusal: UploadRefused, source: str) -> None:
    """Audit a refused file (its reason, never its name)."""
    audit.record(
        session,
        Actor("caller", source),
        "upload.refused",
        object_type="call",
        object_id=call.public_id,
        detail={"reason": refusal.reason},
    )


def finish(session: Session, call: Call, invite: Invite, source: str) -> Usage:
    """The caller pressed Finished: the link is spent."""
    used = usage(session, invite)
    invites.finish_collection(session, call, source, "caller_finished")
    return used


def for_incident(session: Session, incident_id: int) -> list[UploadedItem]:
    return list(
        session.exec(
            select(UploadedItem)
            .where(UploadedItem.incident_id == incident_id)
            .order_by(col(UploadedItem.id))
        ).all()
    )


def opened_by_staff(session: Session, actor: Actor, item: UploadedItem) -> None:
    """Every view or download of an uploaded item is audited."""
    audit.record(
        session,
        actor,
        "upload.viewed",
        object_type="upload",
        object_id=item.id or 0,
        detail={"incident": item.incident_id, "sha256": item.sha256},
    )
