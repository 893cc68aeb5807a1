"""Messages to callers (SMS invites): queue, pick up when due, record what happened.

A message is queued ``pending``; the dispatcher sends it through the adapter and
``record_result`` moves it to ``sent``, ``stored`` (outbox), ``retrying`` (with
exponential backoff) or ``failed`` (refused, or after the last attempt). Each
message's outcome is audited and counted once. Neither the audit trail nor the logs
ever carry the phone number or the text: only the message id and its reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlmodel import Session, col, func, select

from appliance import i18n, metrics
from appliance.config import Settings
from appliance.db import wake_after_commit
from appliance.models import (
    FINAL_STATES,
    PURPOSES,
    UNSENT_STATES,
    Call,
    CallState,
    Incident,
    Invite,
    MessageStatus,
    OutboundMessage,
    RvrCase,
    utcnow,
)
from appliance.services import audit
from appliance.services.audit import Actor

E164_RE = re.compile(r"\+[1-9]\d{7,14}")
REFERENCE_RE = re.compile(r"[A-Za-z0-9._:/-]{1,64}")
# GOV.UK Notify's longest text message (6 parts of 153 characters).
MAX_BODY_CHARS = 918
CHANNEL = "sms"
# The outbox whose senders wake after a commit that queued a message (db.wake_after_commit).
OUTBOX = "sms"
# How much of a gateway's own error text is kept (last_error is 500 characters).
MAX_ERROR_CHARS = 300


class Delivery(StrEnum):
    SENT = "sent"  # the gateway accepted the message
    STORED = "stored"  # the outbox kept it; a person passes it on
    RETRY = "retry"  # not taken now; may work later
    FAILED = "failed"  # refused; trying again would not help


@dataclass(frozen=True)
class DeliveryResult:
    status: Delivery
    provider_id: str | None = None
    error: str = ""
    retry_after: float | None = None  # seconds the gateway asked us to wait

    @classmethod
    def sent(cls, provider_id: str | None) -> DeliveryResult:
        return cls(Delivery.SENT, provider_id=provider_id)

    @classmethod
    def retry(cls, error: str, retry_after: float | None = None) -> DeliveryResult:
        return cls(Delivery.RETRY, error=error[:MAX_ERROR_CHARS], retry_after=retry_after)

    @classmethod
    def failed(cls, error: str) -> DeliveryResult:
        return cls(Delivery.FAILED, error=error[:MAX_ERROR_CHARS])


class MessageError(ValueError):
    """The message is for the person who asked."""


@dataclass(frozen=True)
class RetryPolicy:
    """The n-th failed attempt waits ``base * 2**(n-1)`` seconds, at most ``cap``,
    or longer when the gateway asked (Retry-After)."""

    max_attempts: int = 5
    base_seconds: float = 30.0
    cap_seconds: float = 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(max_attempts=settings.notify_max_attempts)

    def delay(self, attempts: int, retry_after: float | None = None) -> timedelta:
        seconds = min(self.cap_seconds, self.base_seconds * 2 ** max(attempts - 1, 0))
        if retry_after is not None:
            seconds = max(seconds, min(retry_after, self.cap_seconds))
        return timedelta(seconds=seconds)


def invite_text(
    settings: Settings, link: str, kind: str = "video", language: str = i18n.SOURCE
) -> str:
    """The invite's wording for its kind in the caller's language, with the force's name
    and the link filled in. The operator's template is looked up in the catalogue: the
    default wording is translated there, a force's own needs its translation added
    (docs/languages.md), else it goes as written."""
    template = {
        "upload": settings.sms_upload_template,
        "location": settings.sms_location_template,
    }.get(kind, settings.sms_invite_template)
    return i18n.gettext(language, template).format(force_name=settings.force_name, link=link)


def rvr_refusal(
    session: Session, settings: Settings, incident_id: int | None, purpose: str = "invite"
) -> str:
    """Why no SMS may go to this incident's caller now ("" when one may).

    A Rapid Video Response caller's phone may be in the abuser's hands: only the
    transfer's invite goes, and only while the safety questions stand answered yes.
    Every message is made through here (queued or resent), so no path can skip it."""
    if incident_id is None:
        return ""
    incident = session.get(Incident, incident_id)
    if incident is None or incident.category not in settings.rvr_categories:
        return ""
    if purpose != "invite":
        return "an RVR caller is sent only the transfer's link, never a " + purpose
    case = session.exec(select(RvrCase).where(RvrCase.incident_id == incident_id)).first()
    if case is None or not case.safety_passed:
        return "the RVR safety questions do not stand answered yes: nothing goes to this phone"
    return ""


def cancel_unsent(session: Session, actor: Actor, incident_id: int) -> list[OutboundMessage]:
    """Withdraw every message of an incident not yet delivered (RVR safety turned "no")."""
    unsent = session.exec(
        select(OutboundMessage).where(
            OutboundMessage.incident_id == incident_id,
            col(OutboundMessage.status).in_([s.value for s in UNSENT_STATES]),
        )
    ).all()
    for message in unsent:
        message.status = MessageStatus.CANCELLED.value
        message.next_attempt_at = None
        session.add(message)
        session.flush()
        _audit(session, actor, "message.cancelled", message)
    return list(unsent)


def queue_sms(
    session: Session,
    actor: Actor,
    *,
    settings: Settings,
    to_phone: str,
    body: str,
    reference: str,
    incident_id: int | None = None,
    call_public_id: str | None = None,
    not_before: datetime | None = None,
    purpose: str = "invite",
) -> OutboundMessage:
    """Store an SMS to send (``pending``, due now or at ``not_before``, e.g. a reminder).

    ``purpose`` is one of ``PURPOSES``; only invites count in ``evr_invites_*``. The
    dispatcher wakes once the session commits. Refused (``MessageError``) to an RVR
    caller unless ``rvr_refusal`` allows it."""
    message = _new(
        session,
        settings,
        to_phone=to_phone,
        body=body,
        reference=reference,
        incident_id=incident_id,
        call_public_id=call_public_id,
        purpose=purpose,
    )
    if not_before is not None:
        message.next_attempt_at = not_before
        session.add(message)
        session.flush()
    _audit(session, actor, "message.queued", message)
    return message


def cancel(session: Session, actor: Actor, message: OutboundMessage) -> bool:
    """Withdraw a message not yet tried (a reminder for a moved or cancelled appointment).

    ``False`` when it is too late: it was tried already, or has gone.
    """
    if message.status != MessageStatus.PENDING.value or message.attempts:
        return False
    message.status = MessageStatus.CANCELLED.value
    message.next_attempt_at = None
    session.add(message)
    session.flush()
    _audit(session, actor, "message.cancelled", message)
    return True


def _new(
    session: Session,
    settings: Settings,
    *,
    to_phone: str,
    body: str,
    reference: str,
    incident_id: int | None,
    call_public_id: str | None,
    purpose: str = "invite",
) -> OutboundMessage:
    if purpose not in PURPOSES:
        raise MessageError(f"a message is for one of: {', '.join(PURPOSES)}")
    if not E164_RE.fullmatch(to_phone):
        raise MessageError("the phone number must be in E.164 form, e.g. +447700900123")
    if not body.strip() or len(body) > MAX_BODY_CHARS:
        raise MessageError(f"the text must have 1 to {MAX_BODY_CHARS} characters")
    if not REFERENCE_RE.fullmatch(reference):
        raise MessageError("the reference must be 1-64 letters, digits or . _ : / -")
    if refusal := rvr_refusal(session, settings, incident_id, purpose):
        raise MessageError(refusal)
    now = utcnow()
    message = OutboundMessage(
        incident_id=incident_id,
        call_public_id=call_public_id,
        channel=CHANNEL,
        purpose=purpose,
        to_phone=to_phone,
        body=body,
        reference=reference,
        status=MessageStatus.PENDING.value,
        created_at=now,
        next_attempt_at=now,
    )
    session.add(message)
    session.flush()
    wake_after_commit(session, OUTBOX)
    return message


def due(session: Session, now: datetime, limit: int = 20) -> list[OutboundMessage]:
    """Unsent messages whose next attempt is due, oldest first.

    The last check before a message leaves: one to an RVR incident whose safety
    questions no longer stand answered yes is withdrawn here instead (audited), so even
    a message queued while safety passed never goes after it stopped passing."""
    found = list(
        session.exec(
            select(OutboundMessage)
            .where(
                col(OutboundMessage.status).in_([s.value for s in UNSENT_STATES]),
                col(OutboundMessage.next_attempt_at) <= now,
            )
            .order_by(col(OutboundMessage.next_attempt_at), col(OutboundMessage.id))
            .limit(limit)
        ).all()
    )
    incident_ids = {m.incident_id for m in found if m.incident_id is not None}
    if not incident_ids:
        return found
    unsafe = set(
        session.exec(
            select(RvrCase.incident_id).where(
                col(RvrCase.incident_id).in_(incident_ids),
                col(RvrCase.safety_passed).is_not(True),
            )
        ).all()
    )
    for message in found:
        if message.incident_id in unsafe:
            message.status = MessageStatus.CANCELLED.value
            message.next_attempt_at = None
            session.add(message)
            session.flush()
            _audit(session, Actor(audit.SYSTEM), "message.cancelled", message, why="rvr_safety")
    return [m for m in found if m.incident_id not in unsafe]


def record_result(
    session: Session,
    message: OutboundMessage,
    result: DeliveryResult,
    now: datetime,
    policy: RetryPolicy,
) -> OutboundMessage:
    """One attempt's result. An outcome (sent, stored, failed) is audited and counted once."""
    if MessageStatus(message.status) not in UNSENT_STATES:
        raise MessageError(f"message {message.id} is already {message.status}")
    message.attempts += 1
    system = Actor(audit.SYSTEM)
    if result.status is Delivery.SENT:
        message.status = MessageStatus.SENT.value
        message.sent_at = now
        message.provider_id = result.provider_id
        message.next_attempt_at = None
        message.last_error = ""
        if message.purpose == "invite":
            metrics.INVITES_SENT.labels(CHANNEL).inc()
        _audit(session, system, "message.sent", message)
    elif result.status is Delivery.STORED:
        message.status = MessageStatus.STORED.value
        message.next_attempt_at = None
        message.last_error = ""
        _audit(session, system, "message.stored", message)
    elif result.status is Delivery.RETRY and message.attempts < policy.max_attempts:
        message.status = MessageStatus.RETRYING.value
        message.last_error = result.error[:500]
        message.next_attempt_at = now + policy.delay(message.attempts, result.retry_after)
    else:
        message.status = MessageStatus.FAILED.value
        message.next_attempt_at = None
        gave_up = result.status is Delivery.RETRY
        message.last_error = (
            f"gave up after {message.attempts} attempts: {result.error}"
            if gave_up
            else result.error
        )[:500]
        if message.purpose == "invite":
            metrics.INVITES_FAILED.labels(CHANNEL).inc()
        _audit(session, system, "message.failed", message, gave_up=gave_up)
    session.add(message)
    session.flush()
    return message


def for_incident(session: Session, incident_id: int) -> list[OutboundMessage]:
    return list(
        session.exec(
            select(OutboundMessage)
            .where(OutboundMessage.incident_id == incident_id)
            .order_by(col(OutboundMessage.id).desc())
        ).all()
    )


def recent(session: Session, limit: int = 200) -> list[OutboundMessage]:
    """The outbox: every message, newest first."""
    return list(
        session.exec(
            select(OutboundMessage).order_by(col(OutboundMessage.id).desc()).limit(limit)
        ).all()
    )


def count_failed(session: Session) -> int:
    """Messages the gateway gave up on (the admin's home tile: each wants a look)."""
    query = (
        select(func.count()).select_from(OutboundMessage).where(OutboundMessage.status == "failed")
    )
    return int(session.exec(query).one())


def get(session: Session, message_id: int) -> OutboundMessage | None:
    return session.get(OutboundMessage, message_id)


def resend(
    session: Session, settings: Settings, actor: Actor, message: OutboundMessage
) -> OutboundMessage:
    """A new pending copy of a finished message (the old row keeps its history); to an
    RVR caller only while safety passes and the link it carries is still open."""
    if MessageStatus(message.status) in UNSENT_STATES:
        raise MessageError("this message is still being sent")
    if refusal := rvr_refusal(session, settings, message.incident_id, message.purpose):
        raise MessageError(refusal)
    if message.purpose in ("invite", "reminder") and _link_closed(session, message):
        raise MessageError("the link in this message no longer works: send a new one")
    copy = _new(
        session,
        settings,
        to_phone=message.to_phone,
        body=message.body,
        reference=message.reference,
        incident_id=message.incident_id,
        call_public_id=message.call_public_id,
        purpose=message.purpose,
    )
    _audit(session, actor, "message.resent", copy, of=message.id)
    return copy


def _link_closed(session: Session, message: OutboundMessage) -> bool:
    """The message's link was revoked, or its call is over (resending it helps nobody)."""
    if message.call_public_id is None:
        return False
    row = session.exec(
        select(Invite, Call)
        .join(Call, col(Call.invite_id) == col(Invite.id))
        .where(Call.public_id == message.call_public_id)
    ).first()
    if row is None:
        return False
    invite, call = row
    return invite.revoked_at is not None or CallState(call.state) in FINAL_STATES


def _audit(
    session: Session, actor: Actor, action: str, message: OutboundMessage, **extra: object
) -> None:
    # The id and our reference only: never the number, never the text.
    detail: dict[str, object] = {
        "reference": message.reference,
        "purpose": message.purpose,
        "channel": message.channel,
        "attempts": message.attempts,
        **extra,
    }
    if message.call_public_id:
        detail["call"] = message.call_public_id
    audit.record(
        session, actor, action, object_type="message", object_id=message.id or "", detail=detail
    )
