"""Invites and the caller's link: made, sent by SMS, opened once per request,
agreed to on one phone. The token has 256 random bits and only its SHA-256 is stored.
A link that cannot be used says why (``LinkProblem``) instead of raising."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlmodel import Session, col, select

from appliance import i18n, metrics
from appliance.config import Settings
from appliance.models import (
    FINAL_STATES,
    Call,
    CallState,
    Incident,
    Invite,
    OutboundMessage,
    User,
    utcnow,
)
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.calls.states import CallError, move
from appliance.services.evaluation import trial
from appliance.services.outbox import messages

NOTICE_VERSION = "2026-11-v1"


# What a link asks of the caller. Every kind has a Call row: it carries the link's
# state, the consent and the device binding. Only video calls go on to waiting and
# connected; an upload or location link goes from invited straight to ended when
# the caller is done.
VIDEO = "video"


UPLOAD = "upload"


LOCATION = "location"


INVITE_KINDS = (VIDEO, UPLOAD, LOCATION)


class LinkProblem(StrEnum):
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"
    FINISHED = "finished"
    OTHER_DEVICE = "other_device"
    TOO_EARLY = "too_early"  # a booked appointment's link, before it opens (invite.opens_at)


@dataclass(frozen=True)
class Consent:
    video: bool
    recording: bool
    location: bool
    # With ``location``: kept up to date during the call, not shared once.
    location_updates: bool = False


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_invite(
    session: Session,
    actor: Actor,
    incident: Incident,
    created_by: User,
    ttl: timedelta,
    channel: str = "link",
    kind: str = VIDEO,
    opens_at: datetime | None = None,
    language: str = i18n.SOURCE,
) -> tuple[Invite, Call, str]:
    """A new link and its call. The token is returned once and never stored.

    ``channel`` says how the link travels: ``link`` (shown to the handler to pass on,
    counted as sent now) or ``sms`` (counted by the dispatcher when the gateway answers).
    ``kind`` says what the link asks for: a video call, photos and videos, or the
    caller's location (see ``INVITE_KINDS``). ``language`` is the caller's (appliance/i18n.py).
    """
    if kind not in INVITE_KINDS:
        raise CallError(f"there is no {kind!r} kind of invite")
    if language not in i18n.LANGUAGES:
        raise CallError(f"there is no {language!r} language for a caller")
    if kind == VIDEO and (refusal := trial.video_refusal(session, incident)):
        raise CallError(refusal)
    token = secrets.token_urlsafe(32)
    invite = Invite(
        incident_id=incident.id or 0,
        kind=kind,
        token_hash=hash_token(token),
        created_by_id=created_by.id or 0,
        expires_at=utcnow() + ttl,
        opens_at=opens_at,
        language=language,
    )
    session.add(invite)
    session.flush()
    call = Call(
        public_id=secrets.token_hex(8), incident_id=incident.id or 0, invite_id=invite.id or 0
    )
    session.add(call)
    session.flush()
    if channel == "link":
        metrics.INVITES_SENT.labels("link").inc()
    audit.record(
        session,
        actor,
        "invite.created",
        object_type="incident",
        object_id=incident.cad_reference,
        detail={
            "call": call.public_id,
            "kind": invite.kind,
            "channel": channel,
            "language": language,
            "expires_at": invite.expires_at.isoformat(),
        },
    )
    return invite, call, token


def set_language(session: Session, actor: Actor, invite: Invite, language: str) -> bool:
    """The caller switched language on their page: the link's pages, and the statement
    sent to it from now on, are in ``language``. Audited; False when it was already so."""
    if language not in i18n.OFFERED:
        raise CallError(f"there is no {language!r} language offered to a caller")
    if invite.language == language:
        return False
    before, invite.language = invite.language, language
    session.add(invite)
    incident = session.get(Incident, invite.incident_id)
    audit.record(
        session,
        actor,
        "invite.language",
        object_type="incident",
        object_id=incident.cad_reference if incident else str(invite.incident_id),
        detail={"invite": invite.id, "from": before, "to": language},
    )
    return True


@dataclass(frozen=True)
class CallerLink:
    """What a caller's token names, looked up once per request: the invite, its call (the
    newest, when the caller has rejoined) and its incident (all None for a token we
    cannot place)."""

    token: str
    invite: Invite | None = None
    call: Call | None = None
    incident: Incident | None = None

    @property
    def kind(self) -> str:
        """What the link asks for (a video call when unknown, for wording a refusal)."""
        return self.invite.kind if self.invite is not None else VIDEO

    @property
    def opens_at(self) -> datetime | None:
        """When a booked appointment's link starts to work (None: it always did)."""
        return self.invite.opens_at if self.invite is not None else None


def find_link(session: Session, token: str) -> CallerLink:
    if not token or len(token) > 128:
        return CallerLink(token)
    row = session.exec(
        select(Invite, Call, Incident)
        .join(Call, col(Call.invite_id) == col(Invite.id))
        .join(Incident, col(Incident.id) == col(Invite.incident_id))
        .where(Invite.token_hash == hash_token(token))
        .order_by(col(Call.id).desc())  # a rejoin's newer call is the one the link leads to
    ).first()
    return CallerLink(token) if row is None else CallerLink(token, *row)


def open_link(
    session: Session, token: str | CallerLink, device_hash: str | None, source: str
) -> Call | LinkProblem:
    """The call a caller's link leads to, or the problem that stops it.

    A problem is returned, not raised, so what it records (an expired call, a refused
    second phone) commits with the caller's session instead of rolling back.
    """
    link = token if isinstance(token, CallerLink) else find_link(session, token)
    invite, call = link.invite, link.call
    if invite is None or call is None:
        return LinkProblem.UNKNOWN
    state = CallState(call.state)
    if invite.revoked_at is not None or state is CallState.CANCELLED:
        return LinkProblem.REVOKED
    if state in FINAL_STATES:
        return LinkProblem.EXPIRED if state is CallState.EXPIRED else LinkProblem.FINISHED
    if invite.expires_at <= utcnow() and state is not CallState.CONNECTED:
        move(session, call, CallState.EXPIRED, Actor(audit.SYSTEM, source), reason="link_expired")
        return LinkProblem.EXPIRED
    if invite.opens_at is not None and utcnow() < invite.opens_at:
        return LinkProblem.TOO_EARLY
    if call.caller_device_hash and call.caller_device_hash != device_hash:
        audit.record(
            session,
            Actor("caller", source),
            "call.second_device_refused",
            object_type="call",
            object_id=call.public_id,
        )
        return LinkProblem.OTHER_DEVICE
    if invite.opened_at is None:
        invite.opened_at = utcnow()
        session.add(invite)
        audit.record(
            session,
            Actor("caller", source),
            "invite.opened",
            object_type="call",
            object_id=call.public_id,
        )
    return call


def call_after(
    session: Session, token: str | CallerLink, device_hash: str | None, hours: float
) -> Call | None:
    """The call behind a caller's link for what follows it (reading and signing the
    statement): only on the phone that agreed, while the call is live or for ``hours``
    after it ended; never for a revoked link.
    """
    link = token if isinstance(token, CallerLink) else find_link(session, token)
    invite, call = link.invite, link.call
    if invite is None or call is None or invite.revoked_at is not None or device_hash is None:
        return None
    if call.caller_device_hash != device_hash:
        return None
    if call.ended_at is not None and utcnow() - call.ended_at > timedelta(hours=hours):
        return None
    if CallState(call.state) in (CallState.CANCELLED, CallState.EXPIRED, CallState.INVITED):
        return None
    return call


def record_consent(
    session: Session,
    call: Call,
    consent: Consent,
    device_hash: str,
    source: str,
    notice_version: str = NOTICE_VERSION,
) -> bool:
    """What the caller agreed to, when, under which notice (the hash of the page shown,
    governance.notice); binds the call to this device.

    Without agreement to the video call nothing is bound: the decline is recorded and
    ``False`` returned (an officer's visit stays on offer).
    """
    if not consent.video:
        audit.record(
            session,
            Actor("caller", source),
            "call.consent_declined",
            object_type="call",
            object_id=call.public_id,
        )
        return False
    call.consent_video = consent.video
    call.consent_recording = consent.recording
    call.consent_location = consent.location
    call.consent_location_updates = consent.location and consent.location_updates
    call.consent_at = utcnow()
    call.notice_version = notice_version
    call.caller_device_hash = device_hash
    session.add(call)
    audit.record(
        session,
        Actor("caller", source),
        "call.consent",
        object_type="call",
        object_id=call.public_id,
        detail={
            "video": consent.video,
            "recording": consent.recording,
            "location": consent.location,
            "location_updates": call.consent_location_updates,
            "notice": notice_version,
        },
    )
    return True


def kinds_for(session: Session, some_calls: list[Call]) -> dict[int, str]:
    """Invite kind by call id, for pages that list calls."""
    ids = [c.invite_id for c in some_calls]
    if not ids:
        return {}
    kinds = {
        i.id: i.kind for i in session.exec(select(Invite).where(col(Invite.id).in_(ids))).all()
    }
    return {c.id or 0: kinds.get(c.invite_id, VIDEO) for c in some_calls}


def record_collection_consent(
    session: Session,
    call: Call,
    kind: str,
    agreed: bool,
    device_hash: str,
    source: str,
    notice_version: str = NOTICE_VERSION,
) -> bool:
    """The caller's agreement to an upload or location link; binds the link to this device.

    Like ``record_consent``: a refusal is recorded and ``False`` returned.
    """
    if kind not in (UPLOAD, LOCATION):
        raise CallError(f"a {kind} link takes the video call's consent")
    if not agreed:
        audit.record(
            session,
            Actor("caller", source),
            "call.consent_declined",
            object_type="call",
            object_id=call.public_id,
            detail={"kind": kind},
        )
        return False
    call.consent_location = kind == LOCATION
    call.consent_at = utcnow()
    call.notice_version = notice_version
    call.caller_device_hash = device_hash
    session.add(call)
    audit.record(
        session,
        Actor("caller", source),
        "call.consent",
        object_type="call",
        object_id=call.public_id,
        detail={"kind": kind, "notice": notice_version},
    )
    return True


def finish_collection(session: Session, call: Call, source: str, reason: str) -> None:
    """Spend an upload or location link: the caller is done, or the limit is reached."""
    if CallState(call.state) is CallState.INVITED:
        move(session, call, CallState.ENDED, Actor("caller", source), reason=reason)


def link_for(settings: Settings, token: str) -> str:
    return f"{settings.effective_public_url}/v/{token}"


def create_sms_invite(
    session: Session,
    actor: Actor,
    incident: Incident,
    created_by: User,
    settings: Settings,
    safe_to_contact: bool,
    kind: str = VIDEO,
    *,
    ttl: timedelta | None = None,
    opens_at: datetime | None = None,
    wording: Callable[[str], str] | None = None,
    language: str = i18n.SOURCE,
) -> tuple[Call, OutboundMessage, str]:
    """An invite sent to the caller's phone by SMS (queued; the dispatcher sends it).

    The handler must first confirm it is safe to contact the caller on that number now:
    a domestic abuse victim's phone may be seen by the abuser. A booked appointment
    passes its own ``ttl``, ``opens_at`` and ``wording`` (the text around the link).
    ``language`` is the caller's: the SMS is written in it, and the link's pages are.
    Returns the call, the message and the link (shown nowhere: for a reminder's text).
    """
    if not safe_to_contact:
        raise CallError("confirm that it is safe to contact the caller on this number now")
    _, call, token = create_invite(
        session,
        actor,
        incident,
        created_by,
        ttl or timedelta(hours=settings.invite_ttl_hours),
        "sms",
        kind,
        opens_at=opens_at,
        language=language,
    )
    link = link_for(settings, token)
    message = messages.queue_sms(
        session,
        actor,
        settings=settings,
        to_phone=incident.caller_phone,
        body=(wording or (lambda url: messages.invite_text(settings, url, kind, language)))(link),
        reference=call.public_id,
        incident_id=incident.id,
        call_public_id=call.public_id,
    )
    return call, message, link
