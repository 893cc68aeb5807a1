"""Engine and sessions over SQLite (the default) or PostgreSQL.

SQLite runs in WAL mode with foreign keys enforced, and every writing transaction
starts with ``BEGIN IMMEDIATE``: a deferred transaction that reads and then writes
fails at once (SQLITE_BUSY_SNAPSHOT, no busy wait) when another thread committed in
between, which is exactly what the audit chain does. Taking the write lock up front
makes writers queue on the busy timeout instead.

Pages and queries that only read take ``Database.reader()``: a deferred ``BEGIN`` with
``query_only`` on SQLite (a read-only transaction on PostgreSQL), so a page being
rendered or a report being read never holds the single writer's lock that signalling
waits on.

Deleted means gone: SQLite runs with ``secure_delete`` (freed space in a page is
overwritten with zeros, so a cleared ``wrapped_key`` does not linger in the file), and
``scrub_freed`` checkpoints the WAL (TRUNCATE) after a purge, so the page images that
still held the old value leave the WAL file too. On PostgreSQL an update leaves the old
row version in the table's file until a vacuum, so ``scrub_freed`` rewrites the tables
the purge changed (``VACUUM FULL``, which writes a new file and drops the old one).

The web process folds the WAL into the database in a thread of its own
(``checkpoint_on_commit=False``, ``Database.checkpoint`` every few seconds) instead of in
whichever commit crosses SQLite's 1,000-page mark. That commit is often one made on the
event loop, and a checkpoint syncs the WAL and the database file to disk: on a box whose
disk is busy with recordings the sync waits behind their pages, and every page and
call's signalling waits with it (``bench/checkpoint.py``).

Side effects that leave the box (an SMS, a CAD event) are queued in the same
transaction as the change that causes them; the service marks the session with
``wake_after_commit`` and the senders registered for that outbox are woken only once
the commit has succeeded, so nothing is sent for a change that rolled back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

SQLITE_BUSY_TIMEOUT_MS = 10_000
# A WAL file that grew in a burst shrinks back to this once a checkpoint has emptied it.
SQLITE_WAL_SIZE_LIMIT = 64 * 1024 * 1024
READ_ONLY = "evr_read_only"
_WAKE = "evr_wake_after_commit"
_REWRITTEN = "evr_rewritten_tables"

log = logging.getLogger("evr.db")


def wake_after_commit(session: Session, outbox: str) -> None:
    """Ask for ``outbox``'s senders to be woken once this session's commit succeeds."""
    session.info.setdefault(_WAKE, set()).add(outbox)


def make_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            from pathlib import Path

            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            **kwargs,
        )
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_SIZE_LIMIT}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
            connection.exec_driver_sql("PRAGMA query_only=1")
        else:
            connection.exec_driver_sql("PRAGMA query_only=0")
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def track_rewrites(session: Session) -> None:
    """Note the tables in which this session updates or deletes rows, for
    ``scrub_freed`` after the commit."""

    def note(session: Session, _context: Any) -> None:
        tables = session.info.setdefault(_REWRITTEN, set())
        for row in (*session.dirty, *session.deleted):
            table = getattr(type(row), "__tablename__", None)
            if isinstance(table, str):
                tables.add(table)

    event.listen(session, "after_flush", note)


def scrub_freed(session: Session) -> None:
    """After a committed deletion: make sure no old copy of a cleared value stays in the
    database's own files. Runs on its own connection, outside any transaction.

    SQLite: with ``secure_delete`` the database file keeps no copy of a cleared value,
    but the WAL still holds the page images written before the change until a
    checkpoint overwrites them: fold it in and truncate it (a checkpoint inside a
    transaction cannot finish). PostgreSQL: the old row versions stay in the table's
    file until a vacuum; ``VACUUM FULL`` of each table ``track_rewrites`` saw changed
    writes a new file and unlinks the old (a short exclusive lock on each: purges run
    at a quiet hour). Old values in PostgreSQL's own WAL segments go when the server
    recycles them (docs/governance.md).
    """
    engine = session.get_bind()
    if not isinstance(engine, Engine):
        return
    if engine.dialect.name == "postgresql":
        tables = sorted(session.info.get(_REWRITTEN, ()))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for table in tables:
                quoted = connection.dialect.identifier_preparer.quote(table)
                connection.exec_driver_sql(f"VACUUM (FULL) {quoted}")
        return
    if engine.dialect.name != "sqlite":
        return
    busy, _, _ = _checkpoint(engine, "TRUNCATE")
    if busy:
        log.warning("the WAL checkpoint after a deletion was blocked by a reader")


def _checkpoint(engine: Engine, mode: str) -> tuple[int, int, int]:
    """SQLite's (busy, frames in the WAL, frames copied), on a connection of its own
    outside any transaction (a checkpoint inside one cannot finish)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        busy, frames, copied = cursor.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        cursor.close()
    finally:
        raw.close()
    return int(busy), int(frames), int(copied)


class NestedSessionError(RuntimeError):
    """A session was opened inside another in the same thread (a bug, never user input)."""


class Database:
    """The engine plus a session factory; one per process."""

    def __init__(self, url: str, *, checkpoint_on_commit: bool = True) -> None:
        """``checkpoint_on_commit=False`` (the web process): no commit checkpoints the
        WAL; the owner calls ``checkpoint`` from a thread instead."""
        self.url = url
        self.engine = make_engine(url)
        self.checkpoints_owed = not checkpoint_on_commit and self.engine.dialect.name == "sqlite"
        if self.checkpoints_owed:

            @event.listens_for(self.engine, "connect")
            def _no_checkpoint_on_commit(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")

        self._read_engine = self.engine.execution_options(
            **{READ_ONLY: True, "postgresql_readonly": True}
        )
        self._local = threading.local()
        self._wakers: dict[str, list[Callable[[], None]]] = {}

    def checkpoint(self) -> tuple[int, int, int] | None:
        """Copy what the WAL holds into the database, without waiting on anyone (PASSIVE:
        frames a reader still needs wait for the next one). Blocks on the disk: call it
        off the event loop. Returns SQLite's (busy, frames in the WAL, frames copied), or
        None where nothing is owed (PostgreSQL, or SQLite checkpointing on commit)."""
        if not self.checkpoints_owed:
            return None
        return _checkpoint(self.engine, "PASSIVE")

    def add_waker(self, outbox: str, wake: Callable[[], None]) -> None:
        """Call ``wake`` after every commit that queued something in ``outbox``.

        ``wake`` runs in the committing thread and must be quick and thread-safe (the
        senders' ``poke`` is)."""
        self._wakers.setdefault(outbox, []).append(wake)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error.

        One at a time per thread: with SQLite's single writer a second session opened
        inside the first would wait on the first's lock until the busy timeout. That
        mistake fails here at once, on both engines, instead of hanging ten seconds.
        """
        with self._open(self.engine) as session:
            yield session
        self._wake(session)

    @contextmanager
    def reader(self) -> Iterator[Session]:
        """A read-only session: it takes no write lock, and a write in it fails."""
        with self._open(self._read_engine) as session:
            yield session

    @contextmanager
    def _open(self, bind: Engine) -> Iterator[Session]:
        if getattr(self._local, "open", False):
            raise NestedSessionError("a database session is already open in this thread")
        self._local.open = True
        try:
            with Session(bind, expire_on_commit=False) as session:
                try:
                    yield session
                    session.commit()
                except BaseException:
                    session.rollback()
                    session.info.pop(_WAKE, None)
                    raise
        finally:
            self._local.open = False

    def _wake(self, session: Session) -> None:
        for outbox in sorted(session.info.pop(_WAKE, ())):
            for wake in self._wakers.get(outbox, ()):
                try:
                    wake()
                except Exception:
                    log.exception("waking the %s senders failed", outbox)

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
