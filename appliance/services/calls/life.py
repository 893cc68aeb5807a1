"""What each move of a call means beyond its state: one function per move.

``calls`` holds the state machine; this module decides what else a move brings, in
the same transaction as the move and only when the state really moved: the survey
offer, the booked appointment kept, the CAD event, the count. Each function returns
whether it moved the call, so a second "End", a revoke after the caller left, or a
crash recovery of a call that had already ended changes nothing and tells nobody.

A caller who ends the call themselves may come back on the same link for a few
minutes (``caller_rejoin_minutes``; docs/signalling.md, "A caller who ended by mistake"):
the call ends as usual, but what its end tells the world (the survey offer, the CAD's
``call.ended``) is held while ``Call.rejoin_until`` is set, and goes out once, when the
window closes (``close_rejoin``: it lapsed, the officer ended it, the link was revoked)
or the caller rejoins (``rejoin``: a new call on the same invite, which carries the
survey offer to its own end).

The hub and the web handlers call these and then only translate: they hang up the
live room and tell the pages. RVR's "caller not safe" (``rvr.not_safe``) ends each live
call of the incident through ``end``. Senders wake after the commit (``db.wake_after_commit``).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from appliance import metrics
from appliance.config import Settings
from appliance.models import (
    ACTIVE_APPOINTMENT_STATES,
    FINAL_STATES,
    Appointment,
    AppointmentState,
    Call,
    CallState,
    Incident,
    Invite,
    OutboundMessage,
    Recording,
    User,
    utcnow,
)
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.calls import states
from appliance.services.evaluation import survey
from appliance.services.evidence import captures
from appliance.services.evidence.master_key import Keyring
from appliance.services.outbox import cad, messages

QUICK_EXIT = "quick_exit"
NOT_SAFE = "caller_not_safe"
ABANDONED = "abandoned"
REVOKED = "revoked"
RESTARTED = "appliance_restarted"
MEDIA_FAILED = "media_failed"
CALLER_ENDED = "caller_ended"
REJOIN_LAPSED = "rejoin_lapsed"
REJOIN_NOT_JOINED = "rejoin_not_joined"


def admit(session: Session, settings: Settings, call: Call, handler: User, source: str) -> bool:
    """Connect a waiting call: the handler is recorded, a booked appointment whose link
    this was is kept (its unsent reminder withdrawn), and the CAD hears
    ``call.connected``. False when the call was not waiting (already connected)."""
    if CallState(call.state) is not CallState.WAITING:
        if CallState(call.state) is CallState.CONNECTED:
            return False
        raise states.CallError(f"the call is {call.state}: there is nobody to admit")
    actor = Actor(handler.username, source)
    call.handler_id = handler.id
    states.move(session, call, CallState.CONNECTED, actor)
    _keep_appointment(session, actor, call)
    cad.queue_event(
        session,
        settings,
        "call.connected",
        call.incident_id,
        {"call": {"id": call.public_id, "officer": handler.display_name}},
    )
    return True


def end(session: Session, settings: Settings, call: Call, actor: Actor, reason: str) -> bool:
    """End a live call, or cancel one nobody joined yet; the caller is offered the
    survey (a connected video call only) and the CAD hears ``call.ended``."""
    state = CallState(call.state)
    if state in FINAL_STATES:
        if reason != CALLER_ENDED:  # the officer's End, not safe: no coming back
            close_rejoin(session, settings, call, actor, reason)
        return False
    to = CallState.CANCELLED if state is CallState.INVITED else CallState.ENDED
    states.move(session, call, to, actor, reason=reason)
    if not _open_rejoin(session, settings, call, actor, reason):
        _finished(session, settings, call, reason)
    return True


def fail(session: Session, settings: Settings, call: Call, reason: str) -> bool:
    """The call's media is gone (a dead worker, a crash): it fails, the CAD is told."""
    if CallState(call.state) in FINAL_STATES:
        return False
    states.move(session, call, CallState.FAILED, Actor(audit.SYSTEM), reason=reason)
    _ended(session, settings, call, reason)
    return True


def abandon(session: Session, settings: Settings, call: Call) -> bool:
    """Both sides left a connected call and nobody came back in time."""
    return end(session, settings, call, Actor(audit.SYSTEM), ABANDONED)


def quick_exit(session: Session, settings: Settings, call: Call, source: str) -> bool:
    """The caller left through the quick exit: the call ends (or the link is spent)."""
    return end(session, settings, call, Actor("caller", source), QUICK_EXIT)


def revoke(session: Session, settings: Settings, actor: Actor, call: Call) -> bool:
    """Withdraw the link; a call nobody has joined yet, or a caller still waiting, is
    cancelled, and so is a rejoin made on the same link. A connected call goes on (the
    officer ends it); an ended call's rejoin window shuts. True when this call moved."""
    invite = session.get(Invite, call.invite_id)
    assert invite is not None
    if invite.revoked_at is None:
        invite.revoked_at = utcnow()
        session.add(invite)
        audit.record(session, actor, "invite.revoked", object_type="call", object_id=call.public_id)
    for again in later_on_link(session, call):  # a rejoin the caller is waiting on
        _cancel_revoked(session, settings, actor, again)
    if CallState(call.state) not in (CallState.INVITED, CallState.WAITING):
        close_rejoin(session, settings, call, actor, REVOKED)
        return False
    _cancel_revoked(session, settings, actor, call)
    return True


def _cancel_revoked(session: Session, settings: Settings, actor: Actor, call: Call) -> None:
    if CallState(call.state) not in (CallState.INVITED, CallState.WAITING):
        return
    states.move(session, call, CallState.CANCELLED, actor, reason=REVOKED)
    _offer_survey(session, settings, call)  # a rejoin's: for the call it came back from
    _ended(session, settings, call, REVOKED)


def later_on_link(session: Session, call: Call) -> list[Call]:
    """The calls made on the same link after this one (a caller's rejoins), oldest first:
    revoking the link from an earlier call's page withdraws them too."""
    return list(
        session.exec(
            select(Call)
            .where(Call.invite_id == call.invite_id, col(Call.id) > (call.id or 0))
            .order_by(col(Call.id))
        ).all()
    )


def _live_video_links(session: Session, incident_id: int) -> list[tuple[Call, Invite]]:
    """The incident's video links that still let a caller in (booked ones aside)."""
    rows = session.exec(
        select(Call, Invite)
        .join(Invite, col(Invite.id) == col(Call.invite_id))
        .where(
            Call.incident_id == incident_id,
            Invite.kind == "video",
            col(Invite.revoked_at).is_(None),
            col(Invite.opens_at).is_(None),
            col(Call.state).in_(
                [CallState.INVITED.value, CallState.WAITING.value, CallState.CONNECTED.value]
            ),
        )
    ).all()
    return [(call, invite) for call, invite in rows]


def link_in_use(session: Session, incident_id: int) -> Call | None:
    """A video link of the incident the caller is using: opened on their phone, or its
    call waiting or connected. A new link must not cut them off: the handler revokes
    this one first, so there are never two live links."""
    now = utcnow()
    for call, invite in _live_video_links(session, incident_id):
        opened = invite.opened_at is not None and invite.expires_at > now
        if CallState(call.state) is not CallState.INVITED or opened:
            return call
    return None


def replace_unused_links(
    session: Session, settings: Settings, actor: Actor, incident_id: int, new: Call
) -> list[Call]:
    """The new video link ``new`` replaces every live one nobody has opened yet: each is
    revoked (audited as ``invite.revoked``, its call cancelled, the CAD told once), so a
    second press of "Create video call link" never leaves two live links. Called after
    the new link is made, so a refused new link leaves the old one working."""
    now = utcnow()
    revoked = []
    for call, invite in _live_video_links(session, incident_id):
        if call.id == new.id or invite.opened_at is not None or invite.expires_at <= now:
            continue
        if revoke(session, settings, actor, call):
            revoked.append(call)
    return revoked


def recover_after_crash(session: Session, settings: Settings, keyring: Keyring) -> list[Call]:
    """At start-up: calls that were live when the process died fail, and the CAD hears
    each end once. Every recording left open is kept as partial, measured and hashed,
    including one whose call had ended just before the recorder was closed."""
    left_open = session.exec(select(Recording).where(Recording.status == "recording")).all()
    for recording in left_open:
        call = session.get(Call, recording.call_id)
        assert call is not None
        captures.recording_interrupted(session, keyring, call, recording)
    interrupted = list(
        session.exec(
            select(Call).where(
                col(Call.state).in_([CallState.WAITING.value, CallState.CONNECTED.value])
            )
        ).all()
    )
    for call in interrupted:
        fail(session, settings, call, RESTARTED)
    return interrupted


def rejoin_seconds_left(call: Call, invite: Invite, device_hash: str | None) -> int:
    """How long the caller on this phone may still rejoin this call (0: not at all)."""
    if (
        call.rejoin_until is None
        or CallState(call.state) is not CallState.ENDED
        or invite.revoked_at is not None
        or device_hash is None
        or device_hash != call.caller_device_hash
    ):
        return 0
    return max(int((call.rejoin_until - utcnow()).total_seconds()), 0)


def rejoin(
    session: Session, settings: Settings, call: Call, device_hash: str | None, source: str
) -> Call | None:
    """The caller is back within the window: a new call on the same invite and incident,
    bound to the same phone, which asks for consent again and then waits for the officer
    like any call. The ended call's window closes and the CAD hears it ended (it has, for
    good); the survey offer waits for the new call's end. None when the window is shut."""
    invite = session.get(Invite, call.invite_id)
    if invite is None or rejoin_seconds_left(call, invite, device_hash) <= 0:
        return None
    until = call.rejoin_until
    again = Call(
        public_id=secrets.token_hex(8),
        incident_id=call.incident_id,
        invite_id=call.invite_id,
        rejoin_of_id=call.id,
        caller_device_hash=call.caller_device_hash,
        rejoin_until=until,  # to be joined by then, or it lapses (``close_lapsed_rejoins``)
    )
    session.add(again)
    call.rejoin_until = None
    session.add(call)
    session.flush()
    audit.record(
        session,
        Actor("caller", source),
        "call.rejoined",
        object_type="call",
        object_id=again.public_id,
        detail={"of": call.public_id},
    )
    _ended(session, settings, call, call.end_reason)
    return again


def close_rejoin(session: Session, settings: Settings, call: Call, actor: Actor, why: str) -> bool:
    """Shut the window at once (the officer's End, a revoke, not safe, or it lapsed):
    the held end goes out now, once. A rejoin not joined yet lapses (expired): nobody
    is coming back, and the survey is offered for the call that connected. False when
    there was no window."""
    if call.rejoin_until is None:
        return False
    call.rejoin_until = None
    session.add(call)
    state = CallState(call.state)
    if state is CallState.INVITED:  # a rejoin nobody joined
        states.move(session, call, CallState.EXPIRED, actor, reason=REJOIN_NOT_JOINED)
        _offer_survey(session, settings, call)
        return True
    audit.record(
        session,
        actor,
        "call.rejoin_closed",
        object_type="call",
        object_id=call.public_id,
        detail={"why": why},
    )
    if state in FINAL_STATES:
        _finished(session, settings, call, call.end_reason)
    return True


def close_lapsed_rejoins(session: Session, settings: Settings, now: datetime) -> list[Call]:
    """The windows that have run out (the hub's sampler asks every few seconds)."""
    lapsed = list(
        session.exec(
            select(Call)
            .where(col(Call.rejoin_until).is_not(None), col(Call.rejoin_until) <= now)
            .order_by(col(Call.id))
        ).all()
    )
    for call in lapsed:
        close_rejoin(session, settings, call, Actor(audit.SYSTEM), REJOIN_LAPSED)
    return lapsed


def _open_rejoin(
    session: Session, settings: Settings, call: Call, actor: Actor, reason: str
) -> bool:
    """After the caller's own End of a connected video call (never RVR: see docs/signalling.md),
    open the window: until the link expires at the latest. True when it opened."""
    if reason != CALLER_ENDED or settings.caller_rejoin_minutes <= 0 or call.connected_at is None:
        return False
    invite = session.get(Invite, call.invite_id)
    incident = session.get(Incident, call.incident_id)
    if invite is None or incident is None or invite.kind != "video" or invite.revoked_at:
        return False
    if incident.category in settings.rvr_categories:
        return False
    until = min(utcnow() + timedelta(minutes=settings.caller_rejoin_minutes), invite.expires_at)
    if until <= utcnow():
        return False
    call.rejoin_until = until
    session.add(call)
    audit.record(
        session,
        actor,
        "call.rejoin_open",
        object_type="call",
        object_id=call.public_id,
        detail={"until": until.isoformat()},
    )
    return True


def _finished(session: Session, settings: Settings, call: Call, reason: str) -> None:
    """A call's end as the world hears it: the survey offer and the CAD's call.ended."""
    _offer_survey(session, settings, call)
    _ended(session, settings, call, reason)


def _offer_survey(session: Session, settings: Settings, call: Call) -> None:
    """For the caller's contact: a rejoin that never connected offers it for the call
    it rejoined, which did."""
    while call.connected_at is None and call.rejoin_of_id is not None:
        earlier = session.get(Call, call.rejoin_of_id)
        if earlier is None:
            return
        call = earlier
    survey.after_call(session, settings, call)


def _ended(session: Session, settings: Settings, call: Call, reason: str) -> None:
    cad.queue_event(
        session,
        settings,
        "call.ended",
        call.incident_id,
        {"call": {"id": call.public_id, "state": call.state, "reason": reason}},
    )
    metrics.CALLS_ENDED.labels(call.state).inc()


def _keep_appointment(session: Session, actor: Actor, call: Call) -> None:
    appointment = session.exec(
        select(Appointment)
        .where(Appointment.call_public_id == call.public_id)
        .where(col(Appointment.state).in_([s.value for s in ACTIVE_APPOINTMENT_STATES]))
    ).first()
    if appointment is None:
        return
    appointment.state = AppointmentState.DONE.value
    session.add(appointment)
    reminder = (
        session.get(OutboundMessage, appointment.reminder_message_id)
        if appointment.reminder_message_id
        else None
    )
    if reminder is not None:  # joined early: the reminder would only confuse
        messages.cancel(session, actor, reminder)
    audit.record(
        session,
        actor,
        "appointment.kept",
        object_type="call",
        object_id=call.public_id,
        detail={"appointment": appointment.id},
    )
