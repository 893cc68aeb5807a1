"""Snapshots and recordings kept on the box, each with the SHA-256 of what was written.

Both are sealed (evidence/sealing.py): a snapshot is sealed to a temporary name and
renamed, so a crash or a full disk never leaves a half-written file under an evidence
name; a recording is sealed chunk by chunk by the recorder with the data key its
``EvidenceFile`` row wraps.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import av
from sqlmodel import Session

from appliance.models import (
    Call,
    EvidenceFile,
    FileKind,
    FileStatus,
    Recording,
    Snapshot,
    User,
    utcnow,
)
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.evidence import sealing
from appliance.services.evidence.master_key import Keyring
from media.sealed import PlainView, SealedError

CHUNK = 1024 * 1024


class EvidenceError(Exception):
    """Could not keep an item; nothing was recorded. The message is for the handler."""


def call_dir(data_dir: Path, call: Call) -> Path:
    return data_dir / "calls" / call.public_id


def image_size(jpeg: bytes) -> tuple[int, int]:
    """Width and height, read by decoding it: a check that the still is really an image."""
    with av.open(io.BytesIO(jpeg), "r", format="mjpeg") as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height


def seal_snapshot(
    session: Session,
    keyring: Keyring,
    call: Call,
    user: User,
    jpeg: bytes,
    size: tuple[int, int],
    *,
    suffix: str = "",
    **fields: Any,
) -> Snapshot:
    """Seal a still of ``call`` in its snapshots folder and keep its row (``fields`` add
    to it: a marked-up copy's caption, original and shapes)."""
    taken_at = utcnow()
    path = (
        call_dir(keyring.data_dir, call) / "snapshots" / f"{taken_at:%Y%m%dT%H%M%S%f}Z{suffix}.jpg"
    )
    try:
        sealing.seal_bytes(session, keyring, path, jpeg, FileKind.SNAPSHOT, call.incident_id)
    except OSError as exc:
        raise EvidenceError(f"the snapshot could not be saved: {exc.strerror}") from exc
    snapshot = Snapshot(
        call_id=call.id or 0,
        taken_by_id=user.id or 0,
        taken_at=taken_at,
        path=str(path),
        sha256=hashlib.sha256(jpeg).hexdigest(),
        width=size[0],
        height=size[1],
        size_bytes=len(jpeg),
        **fields,
    )
    session.add(snapshot)
    session.flush()
    return snapshot


def store_snapshot(
    session: Session, keyring: Keyring, call: Call, user: User, jpeg: bytes, source: str
) -> Snapshot:
    snapshot = seal_snapshot(session, keyring, call, user, jpeg, image_size(jpeg))
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


def recording_started(
    session: Session, keyring: Keyring, call: Call, path: Path
) -> tuple[Recording, bytes]:
    """The recording's row and the data key the recorder seals it with."""
    recording = Recording(call_id=call.id or 0, path=str(path))
    session.add(recording)
    session.flush()
    _, data_key = sealing.begin(session, keyring, path, FileKind.RECORDING, call.incident_id)
    audit.record(
        session,
        Actor(audit.SYSTEM),
        "recording.started",
        object_type="call",
        object_id=call.public_id,
        detail={"recording": recording.id},
    )
    return recording, data_key


def _file_of(session: Session, keyring: Keyring, recording: Recording) -> EvidenceFile | None:
    """The sealed file of a recording: under its path, or under the ``.webm`` name the
    row was made with when the recorder's ``.mkv`` (an H264 caller) was never noted."""
    return sealing.file_at(session, keyring, recording.path) or sealing.file_at(
        session, keyring, Path(recording.path).with_suffix(".webm")
    )


def recording_opened(session: Session, keyring: Keyring, recording: Recording, path: Path) -> None:
    """The recorder created its file at ``path``: the recording and its sealed file's
    row follow it (WebM cannot hold H264, so an H264 caller's file is ``.mkv``)."""
    if Path(recording.path) == path:
        return
    file = _file_of(session, keyring, recording)
    recording.path = str(path)
    session.add(recording)
    if file is not None:
        file.path = sealing.relative(keyring, path)
        session.add(file)


def recording_finished(
    session: Session,
    keyring: Keyring,
    call: Call,
    recording: Recording,
    *,
    duration_s: float,
    video_codec: str,
    audio_codecs: list[str],
    size_bytes: int,
    sha256: str,
    tracks: list[dict[str, object]] | None = None,
) -> None:
    """``tracks``: whose media each track holds (``guests.whose_tracks``), kept in the
    audit record, which the evidence export carries."""
    recording.status = "complete"
    recording.ended_at = utcnow()
    recording.duration_s = duration_s
    recording.video_codec = video_codec
    recording.audio_codecs = ",".join(audio_codecs)
    recording.size_bytes = size_bytes
    recording.sha256 = sha256
    session.add(recording)
    file = _file_of(session, keyring, recording)
    if file is not None:
        sealing.finish(
            session, file, sha256, size_bytes, path=sealing.relative(keyring, Path(recording.path))
        )
    audit.record(
        session,
        Actor(audit.SYSTEM),
        "recording.finished",
        object_type="call",
        object_id=call.public_id,
        detail={
            "recording": recording.id,
            "sha256": sha256,
            "duration_s": round(duration_s, 1),
            **({"tracks": tracks} if tracks is not None else {}),
        },
    )


def recording_interrupted(
    session: Session, keyring: Keyring, call: Call, recording: Recording
) -> None:
    """Keep what was written before a crash or a full disk, measured and hashed."""
    recording.status = "partial"
    recording.ended_at = utcnow()
    file = _file_of(session, keyring, recording)
    if file is not None:
        file.status = FileStatus.INCOMPLETE.value
        for suffix in (".webm", ".mkv"):
            candidate = Path(recording.path).with_suffix(suffix)
            if candidate.is_file():
                recording.path = str(candidate)
                file.path = sealing.relative(keyring, candidate)
        if (keyring.data_dir / file.path).is_file():
            try:
                with sealing.reader(keyring, file) as opened:
                    recording.sha256 = opened.sha256()
                    recording.size_bytes = opened.size
                    recording.duration_s = _playable_duration(PlainView(opened))
                sealing.finish(
                    session,
                    file,
                    recording.sha256,
                    recording.size_bytes or 0,
                    FileStatus.INCOMPLETE,
                )
            except SealedError:
                pass
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


def _playable_duration(source: PlainView) -> float | None:
    """How far the file really plays: the last packet that demuxes."""
    try:
        last = 0.0
        with av.open(source, "r") as container:
            for packet in container.demux():
                if packet.pts is not None and packet.time_base is not None:
                    last = max(last, float(packet.pts * packet.time_base))
        return last
    except (av.FFmpegError, OSError):
        return None
