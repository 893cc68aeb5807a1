"""The audit trail: a hash chain that names the first event that was tampered with."""

from __future__ import annotations

import itertools
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from appliance.db import Database
from appliance.models import AuditEvent
from appliance.services import audit
from appliance.services.audit import Actor
from tests.support.cli import Ran, run_evr


def _write_events(db: Database, count: int) -> None:
    with db.session() as session:
        for i in range(count):
            audit.record(
                session,
                Actor("alice", "10.0.0.1"),
                "test.event",
                object_type="thing",
                object_id=i,
                detail={"n": i},
            )


def _evr(database_url: str, *args: str) -> Ran:
    """An `evr` command in this process (tests/support/cli.py)."""
    return run_evr({"EVR_DATABASE_URL": database_url}, *args)


def _tamper(db: Database, sql: str) -> None:
    """Edit a row by hand, as someone with the database file would: triggers first."""
    with db.engine.begin() as connection:
        if db.engine.dialect.name == "sqlite":
            connection.execute(text("DROP TRIGGER audit_events_no_update"))
            connection.execute(text("DROP TRIGGER audit_events_no_delete"))
        else:
            connection.execute(
                text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
            )
        connection.execute(text(sql))


def test_chain_links_each_event_to_the_one_before(db: Database) -> None:
    _write_events(db, 5)
    with db.session() as session:
        events = session.exec(select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert [e.seq for e in events] == [1, 2, 3, 4, 5]
        assert events[0].prev_hash == audit.GENESIS_HASH
        for before, after in itertools.pairwise(events):
            assert after.prev_hash == before.hash
        result = audit.verify(session)
    assert result.ok and result.checked == 5


def test_editing_a_row_by_hand_is_named_by_evr_audit_verify(
    db: Database, database_url: str
) -> None:
    _write_events(db, 6)
    ok = _evr(database_url, "audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert "6 events verified" in ok.stdout

    _tamper(db, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 4")

    broken = _evr(database_url, "audit", "verify")
    assert broken.returncode == 1
    assert "BROKEN at event #4" in broken.stderr
    assert "does not match its hash" in broken.stderr
    assert "3 events before it verified" in broken.stderr


def test_a_deleted_event_is_named(db: Database) -> None:
    _write_events(db, 5)
    _tamper(db, "DELETE FROM audit_events WHERE seq = 2")
    with db.session() as session:
        result = audit.verify(session)
    assert not result.ok
    assert result.broken_seq == 2
    assert "missing" in result.reason


def test_a_rehashed_edit_breaks_the_next_link(db: Database) -> None:
    """Recomputing the edited row's own hash still breaks the link from the next one."""
    _write_events(db, 4)
    with db.session() as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.seq == 2)).one()
        forged = audit.event_hash(
            seq=2,
            at=event.at,
            actor="mallory",
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            source=event.source,
            detail=event.detail,
            prev_hash=event.prev_hash,
        )
    _tamper(db, f"UPDATE audit_events SET actor = 'mallory', hash = '{forged}' WHERE seq = 2")
    with db.session() as session:
        result = audit.verify(session)
    assert result.broken_seq == 3
    assert "link" in result.reason


def test_the_database_refuses_updates_and_deletes(db: Database) -> None:
    _write_events(db, 2)
    for statement in ("UPDATE audit_events SET actor = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as connection:
            connection.execute(text(statement))
    with db.session() as session:
        assert audit.verify(session).checked == 2


def test_concurrent_writers_keep_one_unbroken_chain(db: Database) -> None:
    """Four threads writing at once: every event lands once and the chain still verifies."""
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for i in range(15):
                with db.session() as session:
                    audit.record(session, Actor(name), "test.concurrent", object_id=i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with db.session() as session:
        result = audit.verify(session)
    assert result.ok and result.checked == 60
