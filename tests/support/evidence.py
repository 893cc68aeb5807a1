"""Reading sealed evidence back in tests, and searching the data dir for clear bytes."""

from __future__ import annotations

from pathlib import Path

from appliance.config import Settings
from appliance.db import Database
from appliance.services import keys, sealing


def opened(settings: Settings, db: Database, path: Path | str) -> bytes:
    """The plaintext of the sealed file at ``path``, through its row and the master key."""
    with db.session() as session:
        keyring = keys.open_keyring(settings, session)
        file = sealing.file_at(session, keyring, path)
        assert file is not None, f"no evidence row for {path}"
        return sealing.open_bytes(keyring, file)


def files_containing(root: Path, pattern: bytes) -> list[Path]:
    """Every file under ``root`` whose raw bytes contain ``pattern``."""
    return [p for p in root.rglob("*") if p.is_file() and pattern in p.read_bytes()]
