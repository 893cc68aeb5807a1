"""The web process's commits never checkpoint SQLite's WAL; a thread does it for them.

Tried: a burst of writes large enough that SQLite's own rule (checkpoint at 1,000 pages)
would have made one of those commits copy and sync the WAL; then the app's checkpointer
running for a moment, as `evr serve` runs it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from appliance.db import Database
from appliance.web import app as web_app
from appliance.web import keys

PAGE = 4096
ROWS = 1500  # a row of 3 KB each: more WAL pages than SQLite's 1,000-page mark


def burst(db: Database) -> None:
    with db.session() as session:
        session.connection().exec_driver_sql("CREATE TABLE IF NOT EXISTS burst (body BLOB)")
    for _ in range(ROWS // 100):
        with db.session() as session:
            session.connection().exec_driver_sql(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) "
                "INSERT INTO burst SELECT randomblob(3000) FROM n"
            )


def wal_frames(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return max(0, (wal.stat().st_size - 32) // (PAGE + 24)) if wal.exists() else 0


def frames_since_restart(db: Database) -> int:
    """Frames in the WAL after one more small write: few once a checkpoint has emptied
    it (the write starts the WAL again from its beginning), all of them otherwise."""
    with db.session() as session:
        session.connection().exec_driver_sql("INSERT INTO burst VALUES (x'00')")
    raw = db.engine.raw_connection()  # a passive checkpoint also says how many frames
    try:
        cursor = raw.cursor()
        return int(cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    finally:
        raw.close()


@pytest.fixture
def owed(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'evr.db'}", checkpoint_on_commit=False)


def test_sqlite_left_alone_checkpoints_inside_a_commit(tmp_path: Path) -> None:
    """The baseline: SQLite's rule keeps the WAL near 1,000 pages by checkpointing in
    whichever commit crosses the mark (on `evr serve`, often one on the event loop)."""
    path = tmp_path / "evr.db"
    db = Database(f"sqlite:///{path}")
    burst(db)
    assert not db.checkpoints_owed and db.checkpoint() is None
    assert frames_since_restart(db) < 1100
    db.engine.dispose()


def test_no_commit_of_the_web_process_checkpoints(owed: Database, tmp_path: Path) -> None:
    burst(owed)
    assert wal_frames(tmp_path / "evr.db") > 1100  # no commit copied the WAL away
    busy, frames, copied = owed.checkpoint() or (1, 0, 0)
    assert busy == 0 and frames > 1100 and copied == frames
    assert frames_since_restart(owed) < 10
    owed.engine.dispose()


async def test_the_apps_checkpointer_folds_the_wal_while_it_runs(
    owed: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web_app, "CHECKPOINT_EVERY_S", 0.05)
    burst(owed)
    running = web_app._checkpointer({keys.DB: owed})
    await anext(running)
    await asyncio.sleep(0.5)
    assert frames_since_restart(owed) < 10  # folded while the app runs, not only at its end
    with pytest.raises(StopAsyncIteration):
        await anext(running)
    owed.engine.dispose()


def test_postgresql_is_never_checkpointed_by_us() -> None:
    db = Database("postgresql://nobody@127.0.0.1:1/none", checkpoint_on_commit=False)
    assert not db.checkpoints_owed and db.checkpoint() is None
