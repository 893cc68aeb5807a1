"""`evr backup --keep N DIR`, what the box's daily timer runs: dated backups, the newest N
kept, nothing else in DIR touched, and never the master key beside the media."""

from __future__ import annotations

import subprocess
from pathlib import Path

from appliance import migrate
from appliance.cli.common import hold_serve_lock
from appliance.config import Settings
from appliance.db import Database
from appliance.models import FileKind, Role
from appliance.services.evidence import master_key, sealing
from tests.support.cli import Ran, run_evr
from tests.support.evidence import files_containing
from tests.support.staff import add_incident, add_user


def evr(settings: Settings, *args: str) -> Ran:
    """An `evr` command on this box, in this process (tests/support/cli.py)."""
    env = {
        "EVR_DATABASE_URL": settings.effective_database_url,
        "EVR_DATA_DIR": str(settings.data_dir),
        "EVR_MASTER_KEY_FILE": str(settings.effective_master_key_file),
    }
    return run_evr(env, *args)


def _seal_one(settings: Settings) -> None:
    db = Database(settings.effective_database_url)
    try:
        migrate.upgrade(db.engine)
        with db.session() as session:
            keyring = master_key.open_keyring(settings, session)
            user = add_user(session, "pc1", Role.HANDLER)
            incident = add_incident(session, user, "CAD/KEEP/1")
            sealing.seal_bytes(
                session,
                keyring,
                settings.data_dir / "calls" / "c1" / "snapshots" / "s.jpg",
                b"a snapshot " * 100,
                FileKind.SNAPSHOT,
                incident.id or 0,
            )
    finally:
        db.dispose()


def test_backup_keep_leaves_the_newest_n_and_nothing_else_touched(
    settings: Settings, tmp_path: Path
) -> None:
    _seal_one(settings)
    parent = tmp_path / "backups"
    not_ours = parent / "evr-20000101T000000Z"
    not_ours.mkdir(parents=True)
    (parent / "notes.txt").write_text("the operator's own file")

    runs = [evr(settings, "backup", "--keep", "2", str(parent)) for _ in range(3)]

    for run in runs:
        assert run.returncode == 0, run.stderr
    kept = sorted(p for p in parent.iterdir() if (p / "backup.json").is_file())
    assert len(kept) == 2
    assert all(p.name.startswith("evr-") for p in kept)
    made = [line.split()[2].rstrip(":") for line in (r.stdout for r in runs)]
    assert [str(p) for p in kept] == sorted(made[1:]), "the two newest are the ones kept"
    assert "removed the older backup" in runs[2].stdout
    assert not_ours.is_dir() and (parent / "notes.txt").is_file()
    assert not list(parent.glob(".partial-*"))
    for backup_dir in kept:
        check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=backup_dir, check=False)
        assert check.returncode == 0
        assert list((backup_dir / "media").rglob("s.jpg")), "the sealed media are in it"


def test_backup_never_holds_the_master_key(settings: Settings, tmp_path: Path) -> None:
    _seal_one(settings)
    parent = tmp_path / "backups"
    run = evr(settings, "backup", "--keep", "1", str(parent))
    assert run.returncode == 0, run.stderr
    master_key = settings.effective_master_key_file.read_bytes()
    assert len(master_key) == 32
    assert files_containing(parent, master_key) == []
    assert not list(parent.rglob("*.key")) and not list(parent.rglob("*.pem"))


def test_backup_keep_below_one_is_refused_and_makes_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    parent = tmp_path / "backups"
    run = evr(settings, "backup", "--keep", "0", str(parent))
    assert run.returncode == 2
    assert "must be 1 or more" in run.stderr
    assert not parent.exists()


def test_backup_leaves_out_uploads_still_arriving_and_the_serve_lock(
    settings: Settings, tmp_path: Path
) -> None:
    """A caller's file half-sent in parts (its sealed chunks in `.session-*` beside the
    evidence) and `evr serve`'s lock file: neither is evidence, neither is backed up;
    the sealed snapshot is."""
    _seal_one(settings)
    session_dir = settings.data_dir / "uploads" / "inc1" / ".session-0123"
    session_dir.mkdir(parents=True)
    (session_dir / f"{0:016d}.chunk").write_bytes(b"sealed chunk " * 50)
    held = hold_serve_lock(settings)
    assert held is not None
    held.close()
    assert (settings.data_dir / "evr-serve.lock").exists()
    dest = tmp_path / "backup"
    run = evr(settings, "backup", str(dest))
    assert run.returncode == 0, run.stderr
    names = [p.name for p in dest.rglob("*") if p.is_file()]
    assert "s.jpg" in names
    assert f"{0:016d}.chunk" not in names and "evr-serve.lock" not in names


def test_restore_is_refused_while_the_data_dir_is_served(
    settings: Settings, tmp_path: Path
) -> None:
    """A backup made, then restored while `evr serve` holds the data dir (its lock): the
    restore stops at once, exit code 2, saying to stop the appliance; nothing replaced."""
    _seal_one(settings)
    dest = tmp_path / "backup"
    assert evr(settings, "backup", str(dest)).returncode == 0
    serving = hold_serve_lock(settings)
    assert serving is not None
    before = sorted(p.name for p in settings.data_dir.rglob("*"))
    with serving:
        refused = evr(settings, "restore", str(dest))
    assert refused.returncode == 2 and "stop it" in refused.stderr
    assert sorted(p.name for p in settings.data_dir.rglob("*")) == before
