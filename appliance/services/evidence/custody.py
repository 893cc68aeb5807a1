"""Who may see, play, mark and export evidence, and the audit of every such act.

Handlers see the evidence of their own incidents, supervisors and evidence officers
all of it; only evidence officers mark items evidential, put them on legal hold and
export. Auditors read the audit trail, admins manage users: neither sees evidence.
A refusal is audited too (it commits with the caller's session like any event).

Every read of a file is audited whatever byte range it asks for, but not one row per
request: a browser plays a recording with many range requests (one per seek, one per
buffer refill). ``ReadLedger`` writes a row at a user's first read of a file and then
at most one per user, file and window (``READ_AUDIT_WINDOW_S``), each row naming every
range answered since the one before; a download is a row every time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, func
from sqlmodel import Session, col, select

from appliance.models import AuditEvent, EvidenceFile, FileStatus, Incident, Role, User, utcnow
from appliance.services import audit
from appliance.services.audit import Actor

EXHIBIT_MAX = 40

READ_AUDIT_WINDOW_S = 300.0
"""At most one audit row per user and file in this many seconds of playback (the first
read is written at once): five minutes bounds a player's hundred seeks to a few rows,
and is short enough that the trail says when someone watched, not only that they did.
A constant, not a setting: how finely custody is recorded is not the operator's knob."""


REFUSALS = {
    "exhibit_too_long": f"An exhibit reference is at most {EXHIBIT_MAX} characters.",
    "exhibit_missing": "An evidential item needs an exhibit reference (e.g. JS/1).",
    "review_missing": "An evidential item needs a review date (MoPI).",
    "review_past": "The review date must be in the future.",
    "deleted": "This item was deleted; only its record remains.",
}
"""Why a mark can be refused, by code: the page that shows a refusal after a redirect
is given the code, never the text, so a crafted link cannot put words on it."""


class CustodyError(Exception):
    """A mark was refused; ``code`` is a key of ``REFUSALS``, the message its text."""

    def __init__(self, code: str) -> None:
        super().__init__(REFUSALS[code])
        self.code = code


def may_view(user: User, roles: Iterable[Role], incident: Incident) -> bool:
    roles = set(roles)
    if roles & {Role.SUPERVISOR, Role.EVIDENCE_OFFICER}:
        return True
    return Role.HANDLER in roles and incident.owner_id == user.id


def may_mark(roles: Iterable[Role]) -> bool:
    return Role.EVIDENCE_OFFICER in set(roles)


may_export = may_mark


def refused(session: Session, actor: Actor, what: str, object_id: str | int) -> None:
    audit.record(
        session,
        actor,
        "evidence.refused",
        object_type=what,
        object_id=object_id,
        detail={},
    )


def accessed(
    session: Session,
    actor: Actor,
    action: str,
    file: EvidenceFile,
    *,
    start: int | None = None,
    end: int | None = None,
    size: int | None = None,
) -> None:
    """``action``: viewed, played, downloaded; with the bytes sent when known
    (``start``..``end`` exclusive of ``size``: ``whole`` when that is every byte)."""
    detail: dict[str, object] = {
        "incident": file.incident_id,
        "kind": file.kind,
        "sha256": file.sha256,
    }
    if start is not None and end is not None and size is not None:
        detail |= {
            "bytes": f"{start}-{end}",
            "size": size,
            "whole": start == 0 and end == size,
            "bytes_served": end - start,
        }
    audit.record(
        session,
        actor,
        f"evidence.{action}",
        object_type="evidence_file",
        object_id=file.id or 0,
        detail=detail,
    )


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


@dataclass
class _Reads:
    """One user's reads of one file since the last row written for them."""

    opened: float
    action: str
    actor: Actor
    file_id: int
    detail: dict[str, object]
    size: int
    ranges: list[tuple[int, int]] = field(default_factory=list)
    requests: int = 0
    bytes_served: int = 0
    first_at: datetime | None = None

    def reopened(self, now: float) -> _Reads:
        """A fresh window for the same user and file, after a row was written."""
        return _Reads(now, self.action, self.actor, self.file_id, self.detail, self.size)

    def add(self, start: int, end: int) -> None:
        self.ranges = _merged([*self.ranges, (start, end)])
        self.requests += 1
        self.bytes_served += end - start
        if self.first_at is None:
            self.first_at = utcnow()


class ReadLedger:
    """Inline reads (played, viewed) of evidence, audited per user and file per window.

    ``read`` is called with the range as parsed, before a byte goes out. The first read
    of a file by a user (from an address) writes its row at once; the reads after it in
    the window are kept here, with the ranges answered merged, and the first read after
    the window writes one row for all of them. ``flush`` (the app calls it every minute
    and at shutdown) writes the windows that have closed with reads still unwritten, so
    the tail of a playback is recorded too. What a crash loses is that tail: the first
    row of the playback is already in the chain.
    """

    def __init__(
        self, window_s: float = READ_AUDIT_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window_s = window_s
        self.clock = clock
        self._open: dict[tuple[str, str, int], _Reads] = {}
        self._lock = threading.Lock()

    def counted(self, actor: Actor, file_id: int, start: int, end: int) -> bool:
        """Fold a read into an open window without a session; False when the caller
        must open one and ``read`` it (a first read, or its window has closed)."""
        with self._lock:
            reads = self._open.get((actor.name, actor.source, file_id))
            if reads is None or self.clock() - reads.opened >= self.window_s:
                return False
            reads.add(start, end)
            return True

    def read(
        self,
        session: Session,
        actor: Actor,
        action: str,
        file: EvidenceFile,
        *,
        start: int,
        end: int,
        size: int,
    ) -> AuditEvent | None:
        """Record a read: a row now if it opens a window, else counted for a later row."""
        now = self.clock()
        key = (actor.name, actor.source, file.id or 0)
        with self._lock:
            reads = self._open.get(key)
            due = reads is None or now - reads.opened >= self.window_s
            if reads is None:
                reads = self._open[key] = _Reads(
                    now,
                    action,
                    actor,
                    file.id or 0,
                    {"incident": file.incident_id, "kind": file.kind, "sha256": file.sha256},
                    size,
                )
            reads.add(start, end)
            if due:
                self._open[key] = reads.reopened(now)
        if not due:
            return None
        try:
            return _write(session, reads)
        except BaseException:
            with self._lock:  # unrecorded: the next read must write its row again
                self._open.pop(key, None)
            raise

    def pending(self) -> bool:
        with self._lock:
            return bool(self._open)

    def flush(self, session: Session, everything: bool = False) -> int:
        """Write the closed windows that hold unwritten reads (all of them at shutdown);
        a closed window with none is forgotten. How many rows were written."""
        now = self.clock()
        with self._lock:
            done = [
                (key, reads)
                for key, reads in self._open.items()
                if everything or now - reads.opened >= self.window_s
            ]
            for key, reads in done:
                if reads.requests and not everything:
                    self._open[key] = reads.reopened(now)
                else:
                    del self._open[key]
        written = [_write(session, reads) for _, reads in done if reads.requests]
        return len(written)


def _write(session: Session, reads: _Reads) -> AuditEvent:
    whole = reads.ranges == [(0, reads.size)]
    return audit.record(
        session,
        reads.actor,
        f"evidence.{reads.action}",
        object_type="evidence_file",
        object_id=reads.file_id,
        detail={
            **reads.detail,
            "bytes": ",".join(f"{start}-{end}" for start, end in reads.ranges),
            "size": reads.size,
            "whole": whole,
            "requests": reads.requests,
            "bytes_served": reads.bytes_served,
            "from": (reads.first_at or utcnow()).isoformat(timespec="seconds"),
            "to": utcnow().isoformat(timespec="seconds"),
        },
    )


def files_of(
    session: Session, incident_id: int, include_deleted: bool = False
) -> list[EvidenceFile]:
    query = select(EvidenceFile).where(EvidenceFile.incident_id == incident_id)
    if not include_deleted:
        query = query.where(EvidenceFile.status != FileStatus.DELETED.value)
    return list(session.exec(query.order_by(col(EvidenceFile.id))).all())


@dataclass(frozen=True)
class Mark:
    evidential: bool
    exhibit_ref: str
    review_at: datetime | None
    legal_hold: bool


def mark(session: Session, actor: Actor, user: User, file: EvidenceFile, new: Mark) -> None:
    """Mark an item evidential (with an exhibit reference and a review date) or not,
    and put it on or off legal hold. Audited with what changed."""
    exhibit = new.exhibit_ref.strip()
    if len(exhibit) > EXHIBIT_MAX:
        raise CustodyError("exhibit_too_long")
    if new.evidential and not exhibit:
        raise CustodyError("exhibit_missing")
    if new.evidential and new.review_at is None:
        raise CustodyError("review_missing")
    if new.review_at is not None and new.review_at <= utcnow():
        raise CustodyError("review_past")
    if file.status == FileStatus.DELETED.value:
        raise CustodyError("deleted")
    before = {
        "evidential": file.evidential,
        "exhibit_ref": file.exhibit_ref,
        "review_at": file.review_at.isoformat() if file.review_at else None,
        "legal_hold": file.legal_hold,
    }
    file.evidential = new.evidential
    file.exhibit_ref = exhibit if new.evidential else ""
    file.review_at = new.review_at if new.evidential else None
    file.legal_hold = new.legal_hold
    file.marked_by_id = user.id
    session.add(file)
    after = {
        "evidential": file.evidential,
        "exhibit_ref": file.exhibit_ref,
        "review_at": file.review_at.isoformat() if file.review_at else None,
        "legal_hold": file.legal_hold,
    }
    audit.record(
        session,
        actor,
        "evidence.marked",
        object_type="evidence_file",
        object_id=file.id or 0,
        detail={
            "incident": file.incident_id,
            "sha256": file.sha256,
            "before": before,
            "after": after,
        },
    )


def counts(session: Session) -> tuple[int, int]:
    """Evidence items kept whose review date has come, and items under a legal hold: the
    evidence officer's home tile, in one query."""
    due = func.sum(case((col(EvidenceFile.review_at) <= utcnow(), 1), else_=0))
    held = func.sum(case((col(EvidenceFile.legal_hold), 1), else_=0))
    row = session.exec(select(due, held).where(col(EvidenceFile.deleted_at).is_(None))).one()
    return int(row[0] or 0), int(row[1] or 0)


@dataclass(frozen=True)
class Holding:
    """One incident as the evidence officer's home lists it."""

    incident: Incident
    files: int
    reviews_due: int
    held: int


def holdings(session: Session, search: str = "", limit: int = 50) -> list[Holding]:
    """Incidents with evidence kept, reviews due and legal holds first, then the most
    recent, with how many items each has, how many are due for review and how many are
    under a legal hold; ``search`` narrows them by CAD reference. The evidence officer's
    start page: a way in without typing URLs. Counted by the database, not in Python."""
    now = utcnow()
    due = func.sum(case((col(EvidenceFile.review_at) <= now, 1), else_=0))
    held = func.sum(case((col(EvidenceFile.legal_hold), 1), else_=0))
    latest = func.max(EvidenceFile.created_at)
    query = (
        select(col(EvidenceFile.incident_id), func.count(), due, held)
        .where(col(EvidenceFile.deleted_at).is_(None))
        .group_by(col(EvidenceFile.incident_id))
    )
    if search.strip():
        query = query.join(Incident, col(Incident.id) == col(EvidenceFile.incident_id)).where(
            col(Incident.cad_reference).contains(search.strip())
        )
    query = query.order_by(due.desc(), held.desc(), latest.desc()).limit(limit)
    rows = list(session.exec(query).all())
    by_id = {
        i.id: i
        for i in session.exec(
            select(Incident).where(col(Incident.id).in_([row[0] for row in rows]))
        ).all()
    }
    return [
        Holding(by_id[incident_id], int(files), int(reviews or 0), int(holds or 0))
        for incident_id, files, reviews, holds in rows
        if incident_id in by_id
    ]
