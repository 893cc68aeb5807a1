"""The one audit writer, and the check of its hash chain.

Every event carries the SHA-256 of its own content and of the event before it, so
editing, deleting or reordering a row breaks the chain from that row on.
``record`` adds the event to the caller's session: it commits, or rolls back,
with the change it records.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from appliance.models import AuditEvent, utcnow

GENESIS_HASH = "0" * 64
# Any constant will do: it names the one advisory lock that queues audit writers
# on PostgreSQL. SQLite needs none: its transactions already start BEGIN IMMEDIATE.
_PG_AUDIT_LOCK = 0x45565241  # "EVRA"

SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """Who did it, and from where (an IP address, or "cli")."""

    name: str
    source: str = ""


def event_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    source: str,
    detail: dict[str, Any],
    prev_hash: str,
) -> str:
    body = json.dumps(
        {
            "seq": seq,
            "at": at.isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "source": source,
            "detail": detail,
            "prev_hash": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    object_type: str = "",
    object_id: str | int = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. Never put a phone number or a caller's name in ``detail``."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_AUDIT_LOCK})
    last = session.exec(select(AuditEvent).order_by(col(AuditEvent.seq).desc()).limit(1)).first()
    seq = 1 if last is None else last.seq + 1
    prev_hash = GENESIS_HASH if last is None else last.hash
    at = utcnow()
    fields: dict[str, Any] = {
        "seq": seq,
        "at": at,
        "actor": actor.name,
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "source": actor.source,
        "detail": detail or {},
        "prev_hash": prev_hash,
    }
    event = AuditEvent(**fields, hash=event_hash(**fields))
    session.add(event)
    session.flush()
    return event


REPEATED = "refusals.repeated"
_EXAMPLES = 5


@dataclass
class _Window:
    opened: float
    at: datetime
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, object_id: str | int) -> None:
        self.count += 1
        if len(self.examples) < _EXAMPLES and str(object_id) not in self.examples:
            self.examples.append(str(object_id))


class RefusalTally:
    """Refusals from outside, at most one chained row per kind and source per window.

    A bad API key or a sign-in for a username nobody has is worth knowing about, not
    worth a hash-chained row each: a flood of them (hundreds a second) would push real
    events out of view and hold the audit writer. The first refusal of a kind from a
    source in a window is recorded in full; the rest are counted, and when the window
    closes one ``refusals.repeated`` row says how many there were, from when to when,
    with a few of the names tried. Closed windows are written by the next refusal's
    session or by ``flush`` (the app calls it every window and at shutdown).
    """

    def __init__(self, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.window_s = window_s
        self._clock = clock
        self._open: dict[tuple[str, str], _Window] = {}
        self._lock = threading.Lock()

    def _closed(self, now: float, everything: bool) -> list[tuple[tuple[str, str], _Window]]:
        done = [
            (key, window)
            for key, window in self._open.items()
            if everything or now - window.opened >= self.window_s
        ]
        for key, _ in done:
            del self._open[key]
        return done

    def record(
        self,
        session: Session,
        actor: Actor,
        action: str,
        *,
        object_type: str = "",
        object_id: str | int = "",
        detail: dict[str, Any] | None = None,
    ) -> AuditEvent | None:
        """Record a refusal, or count it if its kind and source already have a row this
        window. Returns the row written for it, if any."""
        now = self._clock()
        key = (action, actor.source)
        with self._lock:
            closed = self._closed(now, everything=False)
            window = self._open.get(key)
            if window is None:
                self._open[key] = _Window(now, utcnow())
            else:
                window.add(object_id)
        self._write(session, closed)
        if window is not None:
            return None
        return record(
            session,
            actor,
            action,
            object_type=object_type,
            object_id=object_id,
            detail=detail,
        )

    def counted(self, action: str, source: str, object_id: str | int = "") -> bool:
        """Count a refusal that needs no row (its window is open), without a session;
        False when the caller must open one and ``record`` it."""
        with self._lock:
            window = self._open.get((action, source))
            if window is None or self._clock() - window.opened >= self.window_s:
                return False
            window.add(object_id)
            return True

    def pending(self) -> bool:
        with self._lock:
            return bool(self._open)

    def flush(self, session: Session, everything: bool = False) -> int:
        """Write the windows that have closed (all of them at shutdown); how many rows."""
        with self._lock:
            closed = self._closed(self._clock(), everything)
        return self._write(session, closed)

    def _write(self, session: Session, closed: list[tuple[tuple[str, str], _Window]]) -> int:
        written = 0
        for (action, source), window in closed:
            if window.count == 0:
                continue
            record(
                session,
                Actor(SYSTEM, source),
                REPEATED,
                object_type="refusal",
                object_id=action,
                detail={
                    "action": action,
                    "count": window.count,
                    "from": window.at.isoformat(timespec="seconds"),
                    "to": utcnow().isoformat(timespec="seconds"),
                    "examples": window.examples,
                },
            )
            written += 1
        return written


@dataclass(frozen=True)
class VerifyResult:
    checked: int
    broken_seq: int | None = None
    broken_id: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


def _walk(session: Session, batch: int = 1000) -> Iterator[AuditEvent]:
    after = 0
    while True:
        rows = session.exec(
            select(AuditEvent)
            .where(AuditEvent.seq > after)
            .order_by(col(AuditEvent.seq))
            .limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        after = rows[-1].seq


def verify(session: Session) -> VerifyResult:
    """Walk the chain in order and name the first event that does not hold."""
    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0
    for event in _walk(session):
        if event.seq != expected_seq:
            return VerifyResult(
                checked,
                expected_seq,
                None,
                f"event #{expected_seq} is missing (next present is #{event.seq})",
            )
        if event.prev_hash != prev_hash:
            return VerifyResult(
                checked,
                event.seq,
                event.id,
                "its link to the previous event does not match (an event was removed or altered)",
            )
        recomputed = event_hash(
            seq=event.seq,
            at=event.at,
            actor=event.actor,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            source=event.source,
            detail=event.detail,
            prev_hash=event.prev_hash,
        )
        if recomputed != event.hash:
            return VerifyResult(
                checked, event.seq, event.id, "its content does not match its hash (altered)"
            )
        prev_hash = event.hash
        expected_seq += 1
        checked += 1
    return VerifyResult(checked)


def recent(session: Session, limit: int = 100) -> list[AuditEvent]:
    return list(
        session.exec(select(AuditEvent).order_by(col(AuditEvent.seq).desc()).limit(limit)).all()
    )
