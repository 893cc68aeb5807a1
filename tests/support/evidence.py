"""Reading sealed evidence back in tests, and searching the data dir for clear bytes."""

from __future__ import annotations

from pathlib import Path

from appliance.config import Settings
from appliance.db import Database
from appliance.services.evidence import master_key, sealing


def opened(settings: Settings, db: Database, path: Path | str) -> bytes:
    """The plaintext of the sealed file at ``path``, through its row and the master key."""
    with db.session() as session:
        keyring = master_key.open_keyring(settings, session)
        file = sealing.file_at(session, keyring, path)
        assert file is not None, f"no evidence row for {path}"
        return sealing.open_bytes(keyring, file)


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
