"""Guests on a live call: an interpreter, a second officer or a supervisor.

The officer makes a one-call link: it works only while that call is live, on the first
device that opens it, and never again once the guest was removed or the call ended.
Everything a guest does to the call (invited, joined, left, removed) is audited, and
the guest's role is what everyone on the call is shown.
"""

from __future__ import annotations

import secrets
from enum import StrEnum

from sqlmodel import Session, col, select

from appliance.models import GUEST_ROLES, Call, CallState, GuestInvite, User, utcnow
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.calls.invites import hash_token


class GuestError(ValueError):
    """A refused invite or removal; nothing changed."""


class GuestProblem(StrEnum):
    UNKNOWN = "unknown"
    ENDED = "ended"  # the call is over: the link died with it
    REMOVED = "removed"
    NOT_STARTED = "not_started"
    OTHER_DEVICE = "other_device"


def leg_id(guest: GuestInvite) -> str:
    return f"guest-{guest.id}"


def label(guest: GuestInvite) -> str:
    return GUEST_ROLES.get(guest.role, guest.role)


def invite(
    session: Session,
    actor: Actor,
    officer: User,
    call: Call,
    role: str,
    name: str,
    most: int = 3,
) -> tuple[GuestInvite, str]:
    """A one-call link for a guest; the token is returned once and never stored.

    At most ``most`` guests (``guests_max``) at once: each page on the call offered
    that many receive slots when it joined, and a guest past them would go unheard.
    """
    if role not in GUEST_ROLES:
        raise GuestError("choose the guest's role: " + ", ".join(GUEST_ROLES.values()))
    name = " ".join(name.split())[:120]
    if not name:
        raise GuestError("give the guest's name, so everyone on the call knows who it is")
    if CallState(call.state) is not CallState.CONNECTED:
        raise GuestError("a guest can join only a connected call")
    if len(active(session, call)) >= most:
        raise GuestError(
            f"this call already has {most} guest{'s' if most != 1 else ''}, the most this "
            "box allows on one call: remove one first"
        )
    token = secrets.token_urlsafe(32)
    guest = GuestInvite(
        call_id=call.id or 0,
        token_hash=hash_token(token),
        role=role,
        name=name,
        created_by_id=officer.id or 0,
    )
    session.add(guest)
    session.flush()
    audit.record(
        session,
        actor,
        "guest.invited",
        object_type="call",
        object_id=call.public_id,
        detail={"guest": guest.id, "role": role, "name": name},
    )
    return guest, token


def active(session: Session, call: Call) -> list[GuestInvite]:
    return list(
        session.exec(
            select(GuestInvite)
            .where(GuestInvite.call_id == call.id)
            .where(col(GuestInvite.removed_at).is_(None))
            .order_by(col(GuestInvite.id))
        ).all()
    )


def open_link(
    session: Session, token: str, device_hash: str | None, source: str
) -> tuple[GuestInvite, Call] | GuestProblem:
    """The guest's invite and call, or why the link does not work (audited when refused)."""
    if not token or len(token) > 128:
        return GuestProblem.UNKNOWN
    guest = session.exec(
        select(GuestInvite).where(GuestInvite.token_hash == hash_token(token))
    ).first()
    if guest is None:
        return GuestProblem.UNKNOWN
    call = session.get(Call, guest.call_id)
    assert call is not None
    problem = None
    if guest.removed_at is not None:
        problem = GuestProblem.REMOVED
    elif CallState(call.state) is not CallState.CONNECTED:
        problem = (
            GuestProblem.NOT_STARTED
            if CallState(call.state) in (CallState.INVITED, CallState.WAITING)
            else GuestProblem.ENDED
        )
    elif guest.device_hash is not None and guest.device_hash != device_hash:
        problem = GuestProblem.OTHER_DEVICE
    if problem is not None:
        audit.record(
            session,
            Actor("guest", source),
            "guest.link_refused",
            object_type="call",
            object_id=call.public_id,
            detail={"guest": guest.id, "problem": problem.value},
        )
        return problem
    return guest, call


def bind_device(session: Session, guest: GuestInvite, device_hash: str) -> None:
    if guest.device_hash is None:
        guest.device_hash = device_hash
        session.add(guest)


def joined(session: Session, guest: GuestInvite, call: Call, source: str) -> None:
    first = guest.joined_at is None
    guest.joined_at = guest.joined_at or utcnow()
    session.add(guest)
    audit.record(
        session,
        Actor(f"guest:{guest.role}", source),
        "guest.joined" if first else "guest.rejoined",
        object_type="call",
        object_id=call.public_id,
        detail={"guest": guest.id, "role": guest.role, "name": guest.name},
    )


def remove(session: Session, actor: Actor, officer: User, call: Call, guest_id: int) -> GuestInvite:
    guest = session.get(GuestInvite, guest_id)
    if guest is None or guest.call_id != call.id:
        raise GuestError("there is no such guest on this call")
    if guest.removed_at is not None:
        raise GuestError("that guest was already removed")
    guest.removed_at = utcnow()
    guest.removed_by_id = officer.id
    session.add(guest)
    audit.record(
        session,
        actor,
        "guest.removed",
        object_type="call",
        object_id=call.public_id,
        detail={"guest": guest.id, "role": guest.role},
    )
    return guest


def whose_tracks(
    session: Session, call: Call, track_legs: dict[str, list[str]]
) -> list[dict[str, object]]:
    """Who each track of a recording holds, for its record: the media room names legs
    (``caller``, ``handler``, ``guest-<id>``); this names the people behind them."""
    invites = {
        leg_id(g): g
        for g in session.exec(select(GuestInvite).where(GuestInvite.call_id == call.id)).all()
    }
    tracks: list[dict[str, object]] = []
    for track, legs in track_legs.items():
        held: list[dict[str, str]] = []
        for leg in legs:
            guest = invites.get(leg)
            if guest is not None:
                held.append(
                    {"leg": leg, "role": guest.role, "label": label(guest), "name": guest.name}
                )
            else:
                held.append({"leg": leg, "role": leg})
        tracks.append({"track": track, "held": held})
    return tracks
