"""Handing a call on: to a named colleague or back to the queue, with a note.

The officer holding a live or waiting call offers it; until someone accepts, the call
stays theirs and they stay on it (the caller is never left alone). The colleague it
names, or for the queue any handler or supervisor, accepts: the call and its incident
become theirs in that transaction, the offering officer's console closes saying to
whom (the hub's 4005), and the caller is told another officer is joining while their
own media goes on. A newer offer or a take over closes an open one; one whose call has
ended is no longer offered to anyone.
Every step is an audit event on the call (``call.handover_offered``,
``call.handed_over``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import Session, col, or_, select

from appliance.config import Settings
from appliance.models import (
    Call,
    CallHandover,
    CallState,
    Incident,
    Role,
    User,
    UserRole,
    utcnow,
)
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.calls.supervision import LIVE, SupervisionError, supervises

MAX_NOTE = 500
# Who may take a call on (from a colleague or the queue).
TAKERS = frozenset({Role.HANDLER, Role.SUPERVISOR})


@dataclass(frozen=True)
class Offered:
    """An open hand over, as a colleague's queue shows it."""

    handover: CallHandover
    call: Call
    incident: Incident
    from_name: str


def _roles(session: Session, user: User) -> set[Role]:
    names = session.exec(select(UserRole.role).where(UserRole.user_id == user.id)).all()
    return {Role(name) for name in names if name in Role._value2member_map_}


def _may_take(settings: Settings, roles: set[Role], incident: Incident) -> bool:
    """A handler or supervisor; Rapid Video Response work only for an RVR officer or a
    supervisor (as ``intake.incidents.may_work_rvr`` says)."""
    if not roles & TAKERS:
        return False
    if incident.category in settings.rvr_categories:
        return bool(roles & {Role.RVR_OFFICER, Role.SUPERVISOR})
    return True


def colleagues(session: Session, settings: Settings, incident: Incident, user: User) -> list[User]:
    """Who this officer may hand the call to (the console's list), by name."""
    roles: dict[int, set[Role]] = {}
    for link in session.exec(select(UserRole)).all():
        if link.role in Role._value2member_map_:
            roles.setdefault(link.user_id, set()).add(Role(link.role))
    users = session.exec(
        select(User).where(col(User.disabled).is_(False)).order_by(col(User.display_name))
    ).all()
    return [
        u
        for u in users
        if u.id != user.id and _may_take(settings, roles.get(u.id or 0, set()), incident)
    ]


def holds(call: Call, incident: Incident, user: User) -> bool:
    """The call is this officer's: they admitted (or took) it, or, before anyone did,
    its incident is theirs."""
    if call.handler_id is not None:
        return call.handler_id == user.id
    return incident.owner_id == user.id


def open_for_call(session: Session, call: Call) -> CallHandover | None:
    return session.exec(
        select(CallHandover)
        .where(CallHandover.call_id == call.id)
        .where(col(CallHandover.accepted_at).is_(None), col(CallHandover.closed_at).is_(None))
    ).first()


def offer(
    session: Session,
    settings: Settings,
    actor: Actor,
    user: User,
    roles: Iterable[Role],
    call: Call,
    to_username: str,
    note: str,
) -> CallHandover:
    """Offer the call to ``to_username`` (empty: the queue), with a note for them."""
    incident = session.get(Incident, call.incident_id)
    assert incident is not None
    note = " ".join(note.split())[:MAX_NOTE]
    if CallState(call.state) not in LIVE:
        raise SupervisionError(f"the call is {call.state}: there is nothing to hand over")
    if not holds(call, incident, user) and not supervises(roles):
        raise SupervisionError("only the officer holding the call may hand it over")
    if not note:
        raise SupervisionError("write a note for whoever takes the call")
    to: User | None = None
    if to_username.strip():
        to = session.exec(select(User).where(User.username == to_username.strip())).first()
        if to is None or to.disabled:
            raise SupervisionError(f"there is no colleague {to_username.strip()!r} on this box")
        if to.id == user.id:
            raise SupervisionError("the call is already yours")
        if not _may_take(settings, _roles(session, to), incident):
            raise SupervisionError(f"{to.display_name} may not take this call")
    previous = open_for_call(session, call)
    if previous is not None:
        previous.closed_at = utcnow()
        session.add(previous)
    handover = CallHandover(
        call_id=call.id or 0, from_user_id=user.id or 0, to_user_id=to.id if to else None, note=note
    )
    session.add(handover)
    session.flush()
    audit.record(
        session,
        actor,
        "call.handover_offered",
        object_type="call",
        object_id=call.public_id,
        detail={"handover": handover.id, "to": to.username if to else None, "note": note},
    )
    return handover


def offered_to(
    session: Session, settings: Settings, user: User, roles: Iterable[Role]
) -> list[Offered]:
    """The open hand overs this user may accept: theirs by name, and the queue's."""
    roles = set(roles)
    rows = session.exec(
        select(CallHandover, Call, Incident)
        .join(Call, col(Call.id) == CallHandover.call_id)
        .join(Incident, col(Incident.id) == Call.incident_id)
        .where(col(CallHandover.accepted_at).is_(None), col(CallHandover.closed_at).is_(None))
        .where(col(Call.state).in_([s.value for s in LIVE]))
        .where(or_(col(CallHandover.to_user_id) == user.id, col(CallHandover.to_user_id).is_(None)))
        .order_by(col(CallHandover.offered_at))
    ).all()
    offered = []
    for handover, call, incident in rows:
        if handover.from_user_id == user.id or not _may_take(settings, roles, incident):
            continue
        sender = session.get(User, handover.from_user_id)
        offered.append(Offered(handover, call, incident, sender.display_name if sender else ""))
    return offered


def accept(
    session: Session,
    settings: Settings,
    actor: Actor,
    user: User,
    roles: Iterable[Role],
    handover_id: int,
) -> tuple[Call, CallHandover]:
    """Take the call on: it and its incident become this user's."""
    handover = session.get(CallHandover, handover_id)
    if handover is None or handover.closed_at is not None:
        raise SupervisionError("this hand over was withdrawn")
    if handover.accepted_at is not None:
        raise SupervisionError("someone has already taken this call")
    if handover.to_user_id not in (None, user.id):
        raise SupervisionError("this call was handed to someone else")
    call = session.get(Call, handover.call_id)
    incident = session.get(Incident, call.incident_id) if call is not None else None
    assert call is not None and incident is not None
    if CallState(call.state) not in LIVE:
        raise SupervisionError(f"the call is {call.state}: there is nothing to take on")
    if not _may_take(settings, set(roles), incident):
        raise SupervisionError("you may not take this call")
    handover.accepted_at = utcnow()
    handover.accepted_by_id = user.id
    call.handler_id = user.id  # a waiting call too: the officer who offered it lets go
    previous_owner = incident.owner_id
    incident.owner_id = user.id
    session.add_all([handover, call, incident])
    sender = session.get(User, handover.from_user_id)
    audit.record(
        session,
        actor,
        "call.handed_over",
        object_type="call",
        object_id=call.public_id,
        detail={
            "handover": handover.id,
            "from": sender.username if sender else None,
            "note": handover.note,
        },
    )
    if previous_owner != user.id:
        audit.record(
            session,
            actor,
            "incident.assigned",
            object_type="incident",
            object_id=incident.cad_reference,
            detail={"to": user.username, "by": "call hand over"},
        )
    return call, handover
