"""Retention: what each thing is, where its case stands, and the purge that acts on it.

Every evidence file gets one ``Decision`` with the rule that made it (the dry run
prints them all). In order: a file on legal hold is kept; a signed statement is
evidential by rule; a file marked evidential is kept to its review date; the files of
an incident whose outcome is in ``evidential_outcomes`` (it went to investigation)
become evidential by rule, reviewed ``evidential_review_days`` after it closed; nothing
of an incident that is still open is deleted; the rest is kept for its kind's days
(``retention_by_outcome``, else ``retention_by_category``, else ``retention_by_kind``,
else ``retention_days``) after it was made. Evidential files are never deleted by the
purge: past their review date they are listed as due for review, and the evidence
officer extends or unmarks them.

Records (caller details, chat, shared locations, survey comments, RVR notes) are
minimised by kind, days after the incident closed, unless any of its files is kept as
evidence. Deletion destroys the wrapped data key first (the file can then never be
read by this box, whatever copies of it exist) and then the file; the key's fingerprint
goes on the shred list beside the master key (``master_key.shred``), so a backup made
before the purge and restored later cannot bring it back; the row stays as a tombstone
with the hash, and the deletion is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sqlmodel import Session, col, select

from appliance import db
from appliance.config import Settings
from appliance.config.evidence import RECORD_KINDS
from appliance.models import (
    UNSENT_STATES,
    Call,
    ChatMessage,
    DashAssessment,
    Disclosure,
    EvidenceFile,
    FileKind,
    FileStatus,
    Incident,
    LocationFix,
    MessageStatus,
    OfficerDraft,
    OutboundMessage,
    RvrCase,
    SharedLocation,
    SurveyResponse,
    utcnow,
)
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.evidence import master_key, sealing
from appliance.services.evidence.master_key import Keyring

KEPT_STATES = [FileStatus.COMPLETE.value, FileStatus.INCOMPLETE.value]


MINIMISED = "(minimised)"

CLOSED = "closed"


class Action(StrEnum):
    DELETE = "delete"
    KEEP = "keep"
    MARK = "mark evidential"  # evidential by rule: the purge marks it, with a review date
    REVIEW = "review due"


@dataclass(frozen=True)
class Decision:
    file: EvidenceFile
    action: Action
    rule: str
    review_at: datetime | None = None


def decide(file: EvidenceFile, incident: Incident, settings: Settings, now: datetime) -> Decision:
    """What happens to one file today, and the rule that says so."""
    closed = incident.status == CLOSED and incident.closed_at is not None
    review_at = (
        incident.closed_at + timedelta(days=settings.evidential_review_days)
        if incident.closed_at is not None
        else None
    )
    if file.legal_hold:
        return Decision(file, Action.KEEP, "legal hold")
    if file.evidential:
        if file.review_at is not None and file.review_at < now:
            return Decision(file, Action.REVIEW, "marked evidential, review date passed")
        return Decision(file, Action.KEEP, "marked evidential")
    if file.kind == FileKind.STATEMENT.value:
        return Decision(file, Action.MARK, "signed statement: evidential by rule", review_at)
    if incident.outcome_code in settings.evidential_outcomes:
        return Decision(
            file,
            Action.MARK,
            f"outcome {incident.outcome_code}: evidential by rule (evidential_outcomes)",
            review_at,
        )
    if not closed:
        return Decision(file, Action.KEEP, "incident open: nothing of it is purged")
    if incident.outcome_code in settings.retention_by_outcome:
        days = settings.retention_by_outcome[incident.outcome_code]
        rule = f"outcome {incident.outcome_code}: {days} days (retention_by_outcome)"
    elif incident.category in settings.retention_by_category:
        days = settings.retention_by_category[incident.category]
        rule = f"category {incident.category}: {days} days (retention_by_category)"
    else:
        days = settings.retention_days_for(file.kind)
        own = file.kind in settings.retention_by_kind
        source = "retention_by_kind" if own else "retention_days"
        rule = f"{file.kind}: {days} days ({source})"
    due = file.created_at + timedelta(days=days)
    if due < now:
        return Decision(file, Action.DELETE, rule)
    return Decision(file, Action.KEEP, f"{rule}, until {due:%Y-%m-%d}")


@dataclass(frozen=True)
class Plan:
    delete: list[EvidenceFile]
    review_due: list[EvidenceFile]
    minimise: list[Incident] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    mark: list[Decision] = field(default_factory=list)
    records: list[tuple[Incident, str]] = field(default_factory=list)


def _kept_incidents(session: Session, settings: Settings) -> set[int]:
    """Incidents whose records stay whole: any file held, evidential or evidential by rule."""
    kept = {
        file.incident_id
        for file in session.exec(
            select(EvidenceFile).where(col(EvidenceFile.status).in_(KEPT_STATES))
        ).all()
        if file.legal_hold or file.evidential or file.kind == FileKind.STATEMENT.value
    }
    if settings.evidential_outcomes:
        investigated = session.exec(
            select(Incident.id).where(col(Incident.outcome_code).in_(settings.evidential_outcomes))
        ).all()
        kept |= {incident_id for incident_id in investigated if incident_id is not None}
    return kept


def _calls_of(session: Session, incident: Incident) -> list[Call]:
    return list(session.exec(select(Call).where(Call.incident_id == incident.id)).all())


def _chat_of(session: Session, incident: Incident) -> list[ChatMessage]:
    ids = [c.id for c in _calls_of(session, incident)]
    if not ids:
        return []
    return list(
        session.exec(
            select(ChatMessage)
            .where(col(ChatMessage.call_id).in_(ids))
            .where(ChatMessage.body != MINIMISED)
        ).all()
    )


def _pending(session: Session, incident: Incident, kind: str) -> bool:
    """Whether a kind of record of this incident still holds something to minimise."""
    if kind == "incident_record":
        return incident.minimised_at is None
    if kind == "chat":
        return bool(_chat_of(session, incident))
    if kind == "location":
        shared = session.exec(
            select(SharedLocation).where(SharedLocation.incident_id == incident.id)
        ).first()
        fix = session.exec(
            select(LocationFix).where(LocationFix.incident_id == incident.id)
        ).first()
        return (
            shared is not None
            or fix is not None
            or any(c.caller_latitude is not None for c in _calls_of(session, incident))
        )
    answer = session.exec(
        select(SurveyResponse).where(SurveyResponse.incident_id == incident.id)
    ).first()
    return answer is not None and answer.comment != ""


def _records_due(session: Session, settings: Settings, now: datetime) -> list[tuple[Incident, str]]:
    """(incident, kind) of records whose days after the close have passed, not yet done."""
    kept = _kept_incidents(session, settings)
    closed = session.exec(
        select(Incident)
        .where(Incident.status == CLOSED)
        .where(col(Incident.closed_at).is_not(None))
        .order_by(col(Incident.id))
    ).all()
    due = []
    for incident in closed:
        if incident.id in kept or incident.closed_at is None:
            continue
        for kind in RECORD_KINDS:
            days = settings.retention_days_for(kind)
            if incident.closed_at < now - timedelta(days=days) and _pending(
                session, incident, kind
            ):
                due.append((incident, kind))
    return due


def minimise_record(session: Session, actor: Actor, incident: Incident, kind: str) -> None:
    """Remove one kind of record's personal data and free text (``incident_record``: all)."""
    if kind == "incident_record":
        minimise(session, actor, incident)
        return
    if kind == "chat":
        for message in _chat_of(session, incident):
            message.body = MINIMISED
            session.add(message)
    elif kind == "location":
        _drop_locations(session, incident)
    else:
        _drop_survey_text(session, incident)
    audit.record(
        session,
        actor,
        "record.minimised",
        object_type="incident",
        object_id=incident.id or 0,
        detail={"kind": kind, "reason": "retention"},
    )


def _drop_locations(session: Session, incident: Incident) -> None:
    for call in _calls_of(session, incident):
        call.caller_latitude = call.caller_longitude = call.caller_location_accuracy_m = None
        session.add(call)
    for shared in session.exec(
        select(SharedLocation).where(SharedLocation.incident_id == incident.id)
    ).all():
        session.delete(shared)
    for fix in session.exec(
        select(LocationFix).where(LocationFix.incident_id == incident.id)
    ).all():
        session.delete(fix)


def _drop_survey_text(session: Session, incident: Incident) -> None:
    for answer in session.exec(
        select(SurveyResponse).where(SurveyResponse.incident_id == incident.id)
    ).all():
        answer.comment = ""
        session.add(answer)


def minimise(session: Session, actor: Actor, incident: Incident) -> None:
    """Remove the caller's personal data and every free text about them (chat, survey
    comment, RVR notes, code word, disclosure subject, officers' unsent drafts); keep
    the incident, its hashes, its ratings and its trail."""
    incident.caller_name = MINIMISED
    incident.caller_phone = ""
    incident.location_text = ""
    incident.minimised_at = utcnow()
    session.add(incident)
    _drop_locations(session, incident)
    for chat in _chat_of(session, incident):
        chat.body = MINIMISED
        session.add(chat)
    _drop_survey_text(session, incident)
    for draft in session.exec(
        select(OfficerDraft).where(OfficerDraft.incident_id == incident.id)
    ).all():
        session.delete(draft)  # typed and never sent: not part of the record
    for case in session.exec(select(RvrCase).where(RvrCase.incident_id == incident.id)).all():
        case.code_word = ""
        session.add(case)
    for dash in session.exec(
        select(DashAssessment).where(DashAssessment.incident_id == incident.id)
    ).all():
        dash.notes = {}
        session.add(dash)
    for disclosure in session.exec(
        select(Disclosure).where(Disclosure.incident_id == incident.id)
    ).all():
        disclosure.subject = MINIMISED
        disclosure.notes = ""
        session.add(disclosure)
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
    """Every file's decision and every record due for minimisation; changes nothing."""
    now = now or utcnow()
    files = session.exec(
        select(EvidenceFile)
        .where(col(EvidenceFile.status).in_(KEPT_STATES))
        .order_by(col(EvidenceFile.id))
    ).all()
    incidents = {
        i.id: i
        for i in session.exec(
            select(Incident).where(col(Incident.id).in_({f.incident_id for f in files}))
        ).all()
    }
    decisions = [decide(f, incidents[f.incident_id], settings, now) for f in files]
    records = _records_due(session, settings, now)
    return Plan(
        delete=[d.file for d in decisions if d.action is Action.DELETE],
        review_due=[d.file for d in decisions if d.action is Action.REVIEW],
        minimise=[i for i, kind in records if kind == "incident_record"],
        decisions=decisions,
        mark=[d for d in decisions if d.action is Action.MARK],
        records=[(i, kind) for i, kind in records if kind != "incident_record"],
    )


def mark_by_rule(session: Session, actor: Actor, decision: Decision) -> None:
    """Make a file evidential because a rule says so (a statement, an investigation)."""
    file = decision.file
    file.evidential = True
    file.review_at = decision.review_at
    session.add(file)
    audit.record(
        session,
        actor,
        "evidence.evidential_by_rule",
        object_type="evidence_file",
        object_id=file.id or 0,
        detail={
            "incident": file.incident_id,
            "rule": decision.rule,
            "review_at": decision.review_at.isoformat() if decision.review_at else None,
        },
    )


def delete(
    session: Session, keyring: Keyring, actor: Actor, file: EvidenceFile, reason: str
) -> None:
    """Destroy the key (committed, and on the shred list), then the file; keep the row
    as a tombstone."""
    wrapped = file.wrapped_key or ""
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
    master_key.shred(keyring, wrapped)
    session.commit()
    sealing.absolute(keyring, file).unlink(missing_ok=True)


def purge(
    session: Session, settings: Settings, keyring: Keyring, actor: Actor, dry_run: bool
) -> Plan:
    due = plan(session, settings)
    if not dry_run:
        db.track_rewrites(session)
        for decision in due.mark:
            mark_by_rule(session, actor, decision)
        session.commit()
        for file in due.delete:
            delete(session, keyring, actor, file, "retention")
        for incident, kind in due.records:
            minimise_record(session, actor, incident, kind)
        for incident in due.minimise:
            minimise(session, actor, incident)
        session.commit()
        if due.delete or due.records or due.minimise:
            db.scrub_freed(session)
    return due


def describe(file: EvidenceFile) -> str:
    return (
        f"{file.kind} #{file.id} incident {file.incident_id} made "
        f"{file.created_at:%Y-%m-%d} sha256 {file.sha256} ({file.path})"
    )
