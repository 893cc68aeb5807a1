"""Snapshots and recordings kept on the box, each with the SHA-256 of what was written.

Files are written to a temporary name, flushed to disk and renamed, so a crash or a
full disk never leaves a half-written file under an evidence name, and the database
row is added only once the file is whole.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import av
from sqlmodel import Session

from appliance.models import Call, Recording, Snapshot, User, utcnow
from appliance.services import audit
from appliance.services.audit import Actor

CHUNK = 1024 * 1024


class EvidenceError(Exception):
    """Could not keep an item; nothing was recorded. The message is for the handler."""


def call_dir(data_dir: Path, call: Call) -> Path:
    return data_dir / "calls" / call.public_id


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(path)
    except OSError:
        partial.unlink(missing_ok=True)
        raise


def image_size(jpeg: bytes) -> tuple[int, int]:
    """Width and height, read by decoding it: a check that the still is really an image."""
    with av.open(io.BytesIO(jpeg), format="mjpeg") as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height


def store_snapshot(
    session: Session, data_dir: Path, call: Call, user: User, jpeg: bytes, source: str
) -> Snapshot:
    width, height = image_size(jpeg)
    folder = call_dir(data_dir, call) / "snapshots"
    taken_at = utcnow()
    path = folder / f"{taken_at:%Y%m%dT%H%M%S%f}Z.jpg"
    try:
        write_atomically(path, jpeg)
    except OSError as exc:
        raise EvidenceError(f"the snapshot could not be saved: {exc.strerror}") from exc
    snapshot = Snapshot(
        call_id=call.id or 0,
        taken_by_id=user.id or 0,
        taken_at=taken_at,
        path=str(path),
        sha256=hashlib.sha256(jpeg).hexdigest(),
        width=width,
        height=height,
        size_bytes=len(jpeg),
    )
    session.add(snapshot)
    session.flush()
    audit.record(
        session,
        Actor(user.username, source),
        "snapshot.taken",
        object_type="call",
        object_id=call.public_id,
        detail={"snapshot": snapshot.id, "sha256": snapshot.sha256},
    )
    return snapshot


def recording_path(data_dir: Path, call: Call, started: int) -> Path:
    return call_dir(data_dir, call) / f"recording-{started}.webm"


def recording_started(session: Session, call: Call, path: Path) -> Recording:
    recording = Recording(call_id=call.id or 0, path=str(path))
    session.add(recording)
    session.flush()
    audit.record(
        session,
        Actor(audit.SYSTEM),
        "recording.started",
        object_type="call",
        object_id=call.public_id,
        detail={"recording": recording.id},
    )
    return recording


def recording_finished(
    session: Session,
    call: Call,
    recording: Recording,
    *,
    duration_s: float,
    video_codec: str,
    audio_codecs: list[str],
    size_bytes: int,
    sha256: str,
) -> None:
    recording.status = "complete"
    recording.ended_at = utcnow()
    recording.duration_s = duration_s
    recording.video_codec = video_codec
    recording.audio_codecs = ",".join(audio_codecs)
    recording.size_bytes = size_bytes
    recording.sha256 = sha256
    session.add(recording)
    audit.record(
        session,
        Actor(audit.SYSTEM),
        "recording.finished",
        object_type="call",
        object_id=call.public_id,
        detail={"recording": recording.id, "sha256": sha256, "duration_s": round(duration_s, 1)},
    )


def recording_interrupted(session: Session, call: Call, recording: Recording) -> None:
    """Keep what was written before a crash, measured and hashed."""
    path = Path(recording.path)
    recording.status = "partial"
    recording.ended_at = utcnow()
    if path.is_file():
        recording.size_bytes = path.stat().st_size
        recording.sha256 = sha256_of(path)
        recording.duration_s = _playable_duration(path)
    session.add(recording)
    audit.record(
        session,
        Actor(audit.SYSTEM),
        "recording.partial",
        object_type="call",
        object_id=call.public_id,
        detail={
            "recording": recording.id,
            "sha256": recording.sha256,
            "bytes": recording.size_bytes or 0,
        },
    )


def _playable_duration(path: Path) -> float | None:
    """How far the file really plays: the last packet that demuxes."""
    try:
        last = 0.0
        with av.open(str(path)) as container:
            for packet in container.demux():
                if packet.pts is not None and packet.time_base is not None:
                    last = max(last, float(packet.pts * packet.time_base))
        return last
    except (av.FFmpegError, OSError):
        return None
