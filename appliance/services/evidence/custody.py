"""Who may see, play, mark and export evidence, and the audit of every such act.

Handlers see the evidence of their own incidents, supervisors and evidence officers
all of it; only evidence officers mark items evidential, put them on legal hold and
export. Auditors read the audit trail, admins manage users: neither sees evidence.
A refusal is audited too (it commits with the caller's session like any event).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func
from sqlmodel import Session, col, select

from appliance.models import EvidenceFile, FileStatus, Incident, Role, User, utcnow
from appliance.services import audit
from appliance.services.audit import Actor

EXHIBIT_MAX = 40


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
        detail |= {"bytes": f"{start}-{end}", "size": size, "whole": start == 0 and end == size}
    audit.record(
        session,
        actor,
        f"evidence.{action}",
        object_type="evidence_file",
        object_id=file.id or 0,
        detail=detail,
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
