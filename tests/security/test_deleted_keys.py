"""Item 17: deleted evidence is gone from the database's own files.

The attack: someone with a copy of the data dir after a purge (a stolen disk, a careless
copy) reads the database's files for the wrapped data key the purge cleared, and unwraps
it with the master key to read a "deleted" file's sealed copy. On SQLite that is the
database file and its WAL; on PostgreSQL, the table's own file in the cluster's data
directory (where an update leaves the old row version until a vacuum).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from appliance import migrate
from appliance.config import Settings
from appliance.db import Database
from appliance.models import EvidenceFile, FileKind, Role, utcnow
from appliance.purger import Purger
from appliance.services.evidence import master_key, sealing
from tests.support.staff import add_incident, add_user


def _database_files(settings: Settings, db: Database) -> list[Path]:
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as connection:
            connection.exec_driver_sql("CHECKPOINT")  # the table's pages onto its file
            data = connection.exec_driver_sql("SHOW data_directory").scalar_one()
            table = connection.exec_driver_sql(
                "SELECT pg_relation_filepath('evidence_files')"
            ).scalar_one()
        return [Path(data) / table]
    main = Path(settings.effective_database_url.removeprefix("sqlite:///"))
    return [p for p in (main, main.with_name(main.name + "-wal")) if p.exists()]


def _holding(settings: Settings, db: Database, needle: bytes) -> list[str]:
    return [p.name for p in _database_files(settings, db) if needle in p.read_bytes()]


def test_a_purged_wrapped_key_is_gone_from_the_database_files(settings: Settings) -> None:
    """Two snapshots sealed, one past retention: after one run of the server's purge the
    old one's wrapped key bytes appear in none of the database's files (SQLite's file and
    WAL; PostgreSQL's table file), while the kept one's key is still there and its file
    still opens."""
    db = Database(settings.effective_database_url)
    migrate.upgrade(db.engine)
    try:
        with db.session() as session:
            keyring = master_key.open_keyring(settings, session)
            user = add_user(session, "pc1", Role.HANDLER)
            incident = add_incident(session, user, "CAD/SEC/17")
            old = sealing.seal_bytes(
                session,
                keyring,
                settings.data_dir / "old.jpg",
                b"o" * 64,
                FileKind.SNAPSHOT,
                incident.id,
            )
            kept = sealing.seal_bytes(
                session,
                keyring,
                settings.data_dir / "kept.jpg",
                b"k" * 64,
                FileKind.SNAPSHOT,
                incident.id,
            )
            old.created_at = utcnow() - timedelta(days=settings.retention_days + 1)
            session.add(old)
            # Nothing of an open incident is purged: this one closed with no evidential outcome.
            incident.status, incident.outcome_code = "closed", "advice_given"
            incident.closed_at = utcnow() - timedelta(days=1)
            session.add(incident)
        assert old.wrapped_key and kept.wrapped_key
        old_key, kept_key = old.wrapped_key.encode(), kept.wrapped_key.encode()
        assert _holding(settings, db, old_key), "test the test: the key is on disk before"

        assert Purger(settings, db, keyring).run_once() == 1

        assert _holding(settings, db, old_key) == []
        assert _holding(settings, db, kept_key), "the kept file's key is still stored"
        if db.engine.dialect.name == "sqlite":
            with db.engine.connect() as connection:
                # Debian builds SQLite with secure_delete on by default; the appliance sets
                # it itself so a build without that default zeroes freed space too.
                assert connection.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
        with db.session() as session:
            rows = {f.id: f for f in session.exec(select(EvidenceFile)).all()}
            assert rows[old.id].wrapped_key is None
            assert sealing.open_bytes(keyring, rows[kept.id]) == b"k" * 64
    finally:
        db.dispose()
