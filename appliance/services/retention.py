"""Retention: what is due for deletion, and the purge that deletes it.

Items not marked evidential go ``retention_days`` after they were made. Evidential items
are never deleted by the purge: once their review date passes they are listed as due
for review, and the evidence officer extends the date or unmarks them. Legal hold
overrides everything. Deletion destroys the wrapped data key first (the file can then
never be read, whatever copies exist, backups included) and then removes the file; the
row stays as a tombstone with the hash, and the deletion is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from appliance.config import Settings
from appliance.models import EvidenceFile, FileStatus, utcnow
from appliance.services import audit, sealing
from appliance.services.audit import Actor
from appliance.services.keys import Keyring

KEPT_STATES = [FileStatus.COMPLETE.value, FileStatus.INCOMPLETE.value]


@dataclass(frozen=True)
class Plan:
    delete: list[EvidenceFile]
    review_due: list[EvidenceFile]


def plan(session: Session, settings: Settings, now: datetime | None = None) -> Plan:
    now = now or utcnow()
    cutoff = now - timedelta(days=settings.retention_days)
    kept = (
        select(EvidenceFile)
        .where(col(EvidenceFile.status).in_(KEPT_STATES))
        .where(col(EvidenceFile.legal_hold).is_(False))
        .order_by(col(EvidenceFile.id))
    )
    delete = session.exec(
        kept.where(col(EvidenceFile.evidential).is_(False)).where(
            col(EvidenceFile.created_at) < cutoff
        )
    ).all()
    review = session.exec(
        kept.where(col(EvidenceFile.evidential).is_(True)).where(col(EvidenceFile.review_at) < now)
    ).all()
    return Plan(list(delete), list(review))


def delete(
    session: Session, keyring: Keyring, actor: Actor, file: EvidenceFile, reason: str
) -> None:
    """Destroy the key (committed), then the file; keep the row as a tombstone."""
    file.wrapped_key = None
    file.status = FileStatus.DELETED.value
    file.deleted_at = utcnow()
    file.deleted_reason = reason
    session.add(file)
    audit.record(
        session,
        actor,
        "evidence.deleted",
        object_type="evidence_file",
        object_id=file.id or 0,
        detail={
            "incident": file.incident_id,
            "kind": file.kind,
            "sha256": file.sha256,
            "reason": reason,
        },
    )
    session.commit()
    sealing.absolute(keyring, file).unlink(missing_ok=True)


def purge(
    session: Session, settings: Settings, keyring: Keyring, actor: Actor, dry_run: bool
) -> Plan:
    due = plan(session, settings)
    if not dry_run:
        for file in due.delete:
            delete(session, keyring, actor, file, "retention")
    return due


def describe(file: EvidenceFile) -> str:
    return (
        f"{file.kind} #{file.id} incident {file.incident_id} made "
        f"{file.created_at:%Y-%m-%d} sha256 {file.sha256} ({file.path})"
    )
