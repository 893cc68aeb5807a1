"""Reading sealed evidence back in tests, and searching the data dir for clear bytes."""

from __future__ import annotations

import time
from pathlib import Path

from sqlmodel import select

from appliance.config import Settings
from appliance.db import Database
from appliance.models import Recording
from appliance.services.evidence import master_key, sealing


def opened(settings: Settings, db: Database, path: Path | str) -> bytes:
    """The plaintext of the sealed file at ``path``, through its row and the master key."""
    with db.session() as session:
        keyring = master_key.open_keyring(settings, session)
        file = sealing.file_at(session, keyring, path)
        assert file is not None, f"no evidence row for {path}"
        return sealing.open_bytes(keyring, file)


def wait_recordings_sealed(data_dir: Path, timeout: float = 30.0) -> None:
    """Until no recording of an appliance run on ``data_dir`` (SQLite) is still open: the
    pages hear that a call has ended before its recording is sealed."""
    from appliance.config import load_settings

    db = Database(load_settings(data_dir=data_dir).effective_database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with db.reader() as session:
                statuses = session.exec(select(Recording.status)).all()
            if "recording" not in statuses:
                return
            assert time.monotonic() < deadline, f"recordings still open after {timeout} s"
            time.sleep(0.2)
    finally:
        db.dispose()


def files_containing(root: Path, pattern: bytes) -> list[Path]:
    """Every file under ``root`` whose raw bytes contain ``pattern``."""
    return [p for p in root.rglob("*") if p.is_file() and pattern in p.read_bytes()]


def opened_in(data_dir: Path, path: Path | str) -> bytes:
    """The plaintext of a sealed file of an appliance run on ``data_dir`` (SQLite)."""
    from appliance.config import load_settings

    settings = load_settings(data_dir=data_dir)
    db = Database(settings.effective_database_url)
    try:
        return opened(settings, db, path)
    finally:
        db.dispose()


def a_video_frame(plain: bytes) -> bytes:
    """The bytes of one encoded video frame of a recording's plaintext (a known pattern
    to search the raw disk for)."""
    import io

    import av

    with av.open(io.BytesIO(plain)) as container:
        for packet in container.demux(video=0):
            if packet.size >= 200:
                return bytes(packet)
    raise AssertionError("no video frame of 200 bytes or more in the recording")
