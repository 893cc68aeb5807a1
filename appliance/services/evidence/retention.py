"""Retention: what is due for deletion, and the purge that deletes it.

Items not marked evidential go ``retention_days`` after they were made. Evidential items
are never deleted by the purge: once their review date passes they are listed as due
for review, and the evidence officer extends the date or unmarks them. Legal hold
overrides everything. Deletion destroys the wrapped data key first (the file can then
never be read, whatever copies exist, backups included) and then removes the file; the
row stays as a tombstone with the hash, and the deletion is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from appliance import db
from appliance.config import Settings
from appliance.models import (
    UNSENT_STATES,
    Call,
    EvidenceFile,
    FileStatus,
    Incident,
    MessageStatus,
    OutboundMessage,
    SharedLocation,
    utcnow,
)
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.evidence import sealing
from appliance.services.evidence.master_key import Keyring

KEPT_STATES = [FileStatus.COMPLETE.value, FileStatus.INCOMPLETE.value]


MINIMISED = "(minimised)"


@dataclass(frozen=True)
class Plan:
    delete: list[EvidenceFile]
    review_due: list[EvidenceFile]
    minimise: list[Incident] = field(default_factory=list)


def _to_minimise(session: Session, settings: Settings, now: datetime) -> list[Incident]:
    """Closed long enough, not yet minimised, and nothing of theirs kept as evidence."""
    kept = select(EvidenceFile.incident_id).where(
        col(EvidenceFile.status).in_(KEPT_STATES)
        & (col(EvidenceFile.evidential).is_(True) | col(EvidenceFile.legal_hold).is_(True))
    )
    return list(
        session.exec(
            select(Incident)
            .where(col(Incident.closed_at) < now - timedelta(days=settings.minimise_after_days))
            .where(col(Incident.minimised_at).is_(None))
            .where(col(Incident.id).not_in(kept))
            .order_by(col(Incident.id))
        ).all()
    )


def minimise(session: Session, actor: Actor, incident: Incident) -> None:
    """Remove the caller's personal data; keep the incident, its hashes and its trail."""
    incident.caller_name = MINIMISED
    incident.caller_phone = ""
    incident.location_text = ""
    incident.minimised_at = utcnow()
    session.add(incident)
    for call in session.exec(select(Call).where(Call.incident_id == incident.id)).all():
        call.caller_latitude = call.caller_longitude = call.caller_location_accuracy_m = None
        session.add(call)
    for shared in session.exec(
        select(SharedLocation).where(SharedLocation.incident_id == incident.id)
    ).all():
        session.delete(shared)
    for message in session.exec(
        select(OutboundMessage).where(OutboundMessage.incident_id == incident.id)
    ).all():
        message.to_phone = ""  # the SMS outbox keeps the number until it is minimised too
        if MessageStatus(message.status) in UNSENT_STATES:
            message.status = MessageStatus.CANCELLED.value
            message.next_attempt_at = None
        session.add(message)
    audit.record(
        session,
        actor,
        "incident.minimised",
        object_type="incident",
        object_id=incident.id or 0,
        detail={"reason": "retention"},
    )


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
    return Plan(list(delete), list(review), _to_minimise(session, settings, now))


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
        for incident in due.minimise:
            minimise(session, actor, incident)
        session.commit()
        if due.delete or due.minimise:
            db.scrub_freed(session)
    return due


def describe(file: EvidenceFile) -> str:
    return (
        f"{file.kind} #{file.id} incident {file.incident_id} made "
        f"{file.created_at:%Y-%m-%d} sha256 {file.sha256} ({file.path})"
    )
