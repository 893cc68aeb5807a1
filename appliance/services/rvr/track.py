"""Rapid Video Response: a domestic abuse caller put through to a video officer while
still on the phone, safely.

The track: an incident of an RVR category (``rvr_categories``) waits on the RVR queue
with a target in minutes, above all other work; an RVR officer takes the next one, asks
the safety questions, and "transfer now" sends a short-lived link with neutral wording
while the caller is still on the line. A "no" to any safety question sends nothing and
says what to do instead. On the call the officer confirms the caller is alone and safe,
may note a code word, and "caller not safe" ends the video at once and flags the
incident for an emergency call-back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlmodel import Session, col, select

from appliance import i18n
from appliance.config import Settings, unsafe_word
from appliance.models import (
    DISCLOSURE_KINDS,
    FINAL_STATES,
    Call,
    CallState,
    Disclosure,
    Incident,
    OutboundMessage,
    RvrCase,
    User,
    utcnow,
)
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.calls import invites, life, states
from appliance.services.intake import incidents, queue
from appliance.services.outbox import messages


class RvrError(ValueError):
    """The message is for the officer."""


@dataclass(frozen=True)
class SafetyQuestion:
    key: str
    text: str
    if_not: str  # what to do instead when the answer is no


SAFETY_QUESTIONS = (
    SafetyQuestion(
        "safe_to_send",
        "It is safe to send a link to this number now",
        "Send no link. Agree a safe time and a safe number to call back, or send an officer.",
    ),
    SafetyQuestion(
        "offender_absent",
        "The person who harms the caller is not with them or nearby",
        "Send no link. If the caller is in danger now, treat it as an emergency and send an "
        "officer; keep to questions they can answer yes or no.",
    ),
    SafetyQuestion(
        "can_talk_freely",
        "The caller can talk freely",
        "Send no link. Keep to yes or no questions, agree a code word and a safe time to "
        "call back, or send an officer.",
    ),
)


@dataclass(frozen=True)
class SafetyResult:
    passed: bool
    instead: list[str]  # what to do instead, one line per "no"
    revoked: list[Call] = field(default_factory=list)  # calls a "no" cancelled (hang them up)


def is_rvr(settings: Settings, incident: Incident) -> bool:
    return incident.category in settings.rvr_categories


def case_of(session: Session, incident: Incident) -> RvrCase | None:
    return session.exec(select(RvrCase).where(RvrCase.incident_id == incident.id)).first()


def _case(session: Session, incident: Incident) -> RvrCase:
    case = case_of(session, incident)
    if case is None:
        case = RvrCase(incident_id=incident.id or 0)
        session.add(case)
        session.flush()
    return case


def _require_rvr(settings: Settings, incident: Incident) -> None:
    if not is_rvr(settings, incident):
        raise RvrError(f"{incident.category} is not an RVR category")


def waiting(session: Session, settings: Settings) -> list[queue.BoardRow]:
    """The RVR queue: RVR incidents waiting for their call, the most urgent first."""
    return [row for row in queue.waiting(session, settings) if row.rvr]


def take_next(session: Session, settings: Settings, actor: Actor, user: User) -> Incident | None:
    """The RVR officer takes the most urgent RVR incident nobody has yet (None: none wait)."""
    for row in waiting(session, settings):
        if row.incident.owner_id is None:
            incidents.take(session, settings, actor, user, row.incident)
            audit.record(
                session,
                actor,
                "rvr.taken",
                object_type="incident",
                object_id=row.incident.cad_reference,
            )
            return row.incident
    return None


def record_safety(
    session: Session,
    settings: Settings,
    actor: Actor,
    user: User,
    incident: Incident,
    answers: dict[str, bool | None],
) -> SafetyResult:
    """The safety questions, asked before any link goes. A "no" stops the video path
    (the incident's eligibility becomes ineligible, so nothing can be sent), revokes
    every link of the incident already sent, withdraws every SMS not yet delivered, and
    says what to do instead; all yes makes it eligible for the transfer."""
    _require_rvr(settings, incident)
    if any(answers.get(q.key) is None for q in SAFETY_QUESTIONS):
        raise RvrError("answer every safety question")
    instead = [q.if_not for q in SAFETY_QUESTIONS if not answers[q.key]]
    passed = not instead
    incidents.set_eligibility(
        session,
        actor,
        user,
        incident,
        [q.text for q in SAFETY_QUESTIONS],
        [answers[q.key] for q in SAFETY_QUESTIONS],
        reason="RVR safety: " + " ".join(instead) if instead else "",
    )
    case = _case(session, incident)
    case.safety_answers = {q.key: bool(answers[q.key]) for q in SAFETY_QUESTIONS}
    case.safety_passed = passed
    case.safety_by_id = user.id
    case.safety_at = utcnow()
    session.add(case)
    audit.record(
        session,
        actor,
        "rvr.safety",
        object_type="incident",
        object_id=incident.cad_reference,
        detail={"passed": passed, **case.safety_answers},
    )
    revoked: list[Call] = []
    if not passed:
        for call in states.for_incident(session, incident.id or 0):
            if CallState(call.state) not in FINAL_STATES and life.revoke(
                session, settings, actor, call
            ):
                revoked.append(call)
        messages.cancel_unsent(session, actor, incident.id or 0)
    return SafetyResult(passed, instead, revoked)


def sms_text(settings: Settings, link: str, language: str = i18n.SOURCE) -> str:
    """The neutral SMS in the caller's language (the catalogue translates the default)."""
    return i18n.gettext(language, settings.rvr_sms_template).format(
        force_name=settings.force_name, link=link
    )


def transfer(
    session: Session, settings: Settings, actor: Actor, user: User, incident: Incident
) -> tuple[Call, OutboundMessage]:
    """Transfer now: the neutral SMS with a short-lived link, while the caller is on the line.

    Refused unless the safety questions were answered yes since the last change, and
    refused if the wording has come to hold an unsafe word (checked without the link,
    whose random letters are not words)."""
    _require_rvr(settings, incident)
    case = case_of(session, incident)
    if case is None or not case.safety_passed or incident.eligibility != "eligible":
        raise RvrError("ask the safety questions first: a link goes only when all are yes")
    language = settings.caller_language_default
    word = unsafe_word(sms_text(settings, "", language), settings.unsafe_words)
    if word:
        raise RvrError(f"the RVR SMS wording contains {word!r}: an administrator must change it")
    call, message, _ = invites.create_sms_invite(
        session,
        actor,
        incident,
        user,
        settings,
        safe_to_contact=True,
        ttl=timedelta(minutes=settings.rvr_link_minutes),
        wording=lambda link: sms_text(settings, link, language),
        language=language,
    )
    case.transferred_at = utcnow()
    case.transfer_call_id = call.id
    session.add(case)
    audit.record(
        session,
        actor,
        "rvr.transfer",
        object_type="incident",
        object_id=incident.cad_reference,
        detail={"call": call.public_id, "link_minutes": settings.rvr_link_minutes},
    )
    return call, message


def _update(
    session: Session,
    settings: Settings,
    actor: Actor,
    incident: Incident,
    action: str,
    detail: dict[str, object] | None = None,
    **fields: object,
) -> None:
    """Set fields on the incident's RVR record and audit it, in one step."""
    _require_rvr(settings, incident)
    case = _case(session, incident)
    for name, value in fields.items():
        setattr(case, name, value)
    session.add(case)
    audit.record(
        session,
        actor,
        action,
        object_type="incident",
        object_id=incident.cad_reference,
        detail=detail,
    )


def confirm_caller_safe(
    session: Session, settings: Settings, actor: Actor, user: User, incident: Incident
) -> None:
    """At the start of the call: the officer has confirmed the caller is alone and safe."""
    _update(
        session,
        settings,
        actor,
        incident,
        "rvr.caller_safe",
        caller_safe_at=utcnow(),
        caller_safe_by_id=user.id,
    )


def set_code_word(
    session: Session, settings: Settings, actor: Actor, incident: Incident, code_word: str
) -> None:
    """The word the caller will use if they cannot speak freely (not audited in clear)."""
    code_word = code_word.strip()
    if len(code_word) > 64:
        raise RvrError("a code word is at most 64 characters")
    _update(
        session,
        settings,
        actor,
        incident,
        "rvr.code_word",
        {"set": bool(code_word)},
        code_word=code_word,
    )


def caller_not_safe(
    session: Session, settings: Settings, actor: Actor, user: User, incident: Incident
) -> None:
    """Flag the incident for an emergency call-back (the web layer ends the video at once)."""
    _update(
        session,
        settings,
        actor,
        incident,
        "rvr.caller_not_safe",
        not_safe_at=utcnow(),
        not_safe_by_id=user.id,
        callback_needed=True,
    )


def record_disclosure(
    session: Session,
    actor: Actor,
    user: User,
    incident: Incident,
    kind: str,
    subject: str = "",
    notes: str = "",
) -> Disclosure:
    """A Clare's Law request or disclosure made on the call, kept on the incident."""
    if kind not in DISCLOSURE_KINDS:
        raise RvrError("choose what kind of Clare's Law record this is")
    disclosure = Disclosure(
        incident_id=incident.id or 0,
        kind=kind,
        subject=subject.strip()[:200],
        notes=notes.strip()[:4000],
        by_id=user.id or 0,
    )
    session.add(disclosure)
    session.flush()
    audit.record(
        session,
        actor,
        "incident.disclosure",
        object_type="incident",
        object_id=incident.cad_reference,
        detail={"kind": kind},
    )
    return disclosure


def disclosures_of(session: Session, incident: Incident) -> list[Disclosure]:
    return list(
        session.exec(
            select(Disclosure)
            .where(Disclosure.incident_id == incident.id)
            .order_by(col(Disclosure.id))
        ).all()
    )


def not_safe(
    session: Session, settings: Settings, actor: Actor, user: User, incident: Incident
) -> list[Call]:
    """The caller is not safe: on an RVR incident every live call of it ends at once,
    then the incident is flagged for an emergency call-back. The calls that moved."""
    ended: list[Call] = []
    if is_rvr(settings, incident):
        for call in states.for_incident(session, incident.id or 0):
            if life.end(session, settings, call, actor, life.NOT_SAFE):
                ended.append(call)
    caller_not_safe(session, settings, actor, user, incident)
    return ended
