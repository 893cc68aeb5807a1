"""Seal a file to a path and open it again: the one way evidence reaches the disk.

Generic over what the file is (recording, snapshot, upload, statement): each gets a
fresh data key, wrapped by the master key into its ``EvidenceFile`` row, and the
SHA-256 of its plaintext as written. Readers check every chunk (media/sealed.py).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sqlmodel import Session, select

from appliance.models import EvidenceFile, FileKind, FileStatus
from appliance.services.evidence.master_key import Keyring
from media import sealed
from media.sealed import SealedError, SealedReader, SealedWriter

__all__ = ["SealedError", "begin", "finish", "open_bytes", "reader", "seal_bytes"]


def relative(keyring: Keyring, path: Path) -> str:
    return str(Path(os.path.abspath(path)).relative_to(os.path.abspath(keyring.data_dir)))


def absolute(keyring: Keyring, file: EvidenceFile) -> Path:
    return keyring.data_dir / file.path


def begin(
    session: Session, keyring: Keyring, path: Path, kind: FileKind, incident_id: int
) -> tuple[EvidenceFile, bytes]:
    """A row for a file about to be written elsewhere (the recorder), and its data key."""
    data_key = sealed.new_data_key()
    return _row(session, keyring, path, data_key, kind, incident_id), data_key


def _row(
    session: Session,
    keyring: Keyring,
    path: Path,
    data_key: bytes,
    kind: FileKind,
    incident_id: int,
    *,
    status: FileStatus = FileStatus.WRITING,
    sha256: str = "",
    size_bytes: int | None = None,
) -> EvidenceFile:
    file = EvidenceFile(
        kind=kind.value,
        incident_id=incident_id,
        path=relative(keyring, path),
        wrapped_key=keyring.wrap(data_key),
        master_key_id=keyring.key_id,
        status=status.value,
        sha256=sha256,
        size_bytes=size_bytes,
    )
    session.add(file)
    session.flush()
    return file


def finish(
    session: Session,
    file: EvidenceFile,
    sha256: str,
    size_bytes: int,
    status: FileStatus = FileStatus.COMPLETE,
    path: str | None = None,
) -> None:
    file.sha256 = sha256
    file.size_bytes = size_bytes
    file.status = status.value
    if path is not None:
        file.path = path
    session.add(file)


def seal_bytes(
    session: Session, keyring: Keyring, path: Path, data: bytes, kind: FileKind, incident_id: int
) -> EvidenceFile:
    """Seal ``data`` to ``path`` (via a temporary name, so a crash leaves no half file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    file, data_key = begin(session, keyring, path, kind, incident_id)
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        sealed.seal_bytes(partial, data_key, data)
        partial.replace(path)
    except OSError:
        partial.unlink(missing_ok=True)
        raise
    finish(session, file, hashlib.sha256(data).hexdigest(), len(data))
    return file


def adopt(
    session: Session,
    keyring: Keyring,
    path: Path,
    data_key: bytes,
    kind: FileKind,
    incident_id: int,
    sha256: str,
    size_bytes: int,
) -> EvidenceFile:
    """A row for a file already sealed whole under ``data_key`` (an upload)."""
    return _row(
        session,
        keyring,
        path,
        data_key,
        kind,
        incident_id,
        status=FileStatus.COMPLETE,
        sha256=sha256,
        size_bytes=size_bytes,
    )


def file_at(session: Session, keyring: Keyring, path: Path | str) -> EvidenceFile | None:
    """The sealed file at ``path``; None for a path outside the data dir or never sealed."""
    try:
        wanted = relative(keyring, Path(path))
    except ValueError:
        return None
    return session.exec(select(EvidenceFile).where(EvidenceFile.path == wanted)).first()


def reader(keyring: Keyring, file: EvidenceFile) -> SealedReader:
    """Open a sealed file for reading; raises SealedError if it cannot be trusted."""
    if file.wrapped_key is None:
        raise SealedError(f"{file.path}: deleted (its data key was destroyed)")
    return SealedReader(
        absolute(keyring, file),
        keyring.unwrap(file.wrapped_key),
        allow_unfinished=file.status in (FileStatus.INCOMPLETE.value, FileStatus.WRITING.value),
    )


def open_bytes(keyring: Keyring, file: EvidenceFile) -> bytes:
    with reader(keyring, file) as opened:
        return b"".join(opened)


def writer(path: Path, data_key: bytes) -> SealedWriter:
    return SealedWriter(path, data_key)
