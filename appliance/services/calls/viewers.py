"""The live view for responders: a one-call, view-only link to a live call.

An attending officer on the way, or a specialist such as a scenes-of-crime officer,
sees and hears the caller on a force phone's browser and sends nothing. The handler
makes the link; like a guest's it works only while that call is connected, on the first
device that opens it, and never again once revoked or once the call has ended. A link
is of one call: presented for another it is refused. Several viewers may watch at once.

Viewers add nothing to the recording: their leg only receives, and the recording holds
the caller's and the handler's tracks as before. Every step is an audit event on the
call: ``viewer.link_made``, ``viewer.opened`` (and ``viewer.reopened``),
``viewer.link_refused`` (with the problem), ``viewer.link_revoked``.
"""

from __future__ import annotations

import secrets
from enum import StrEnum

from sqlmodel import Session, col, select

from appliance.models import Call, CallState, User, ViewerLink, utcnow
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.calls.invites import hash_token

# Enough for the officers attending and a specialist or two; each is a relay leg.
MAX_VIEWERS_PER_CALL = 6
MAX_NAME = 120


class ViewerError(ValueError):
    """A refused link or revocation; the message is for the officer. Nothing changed."""


class ViewerProblem(StrEnum):
    """Why a viewer link does not open; each is audited with the link's call."""

    UNKNOWN = "unknown"
    OTHER_CALL = "other_call"  # a link of one call presented for another
    ENDED = "ended"  # the call is over: the link died with it
    REVOKED = "revoked"
    NOT_STARTED = "not_started"
    OTHER_DEVICE = "other_device"


def leg_id(link: ViewerLink) -> str:
    return f"viewer-{link.id}"


def make(
    session: Session, actor: Actor, officer: User, call: Call, name: str
) -> tuple[ViewerLink, str]:
    """A view-only link for one responder; the token is returned once and never stored."""
    name = " ".join(name.split())[:MAX_NAME]
    if not name:
        raise ViewerError("give the viewer's name and role, so the call knows who is watching")
    if CallState(call.state) is not CallState.CONNECTED:
        raise ViewerError("a viewer link is made for a connected call")
    if len(active(session, call)) >= MAX_VIEWERS_PER_CALL:
        raise ViewerError(f"this call has {MAX_VIEWERS_PER_CALL} viewer links: revoke one first")
    token = secrets.token_urlsafe(32)
    link = ViewerLink(
        call_id=call.id or 0, token_hash=hash_token(token), name=name, created_by_id=officer.id or 0
    )
    session.add(link)
    session.flush()
    audit.record(
        session,
        actor,
        "viewer.link_made",
        object_type="call",
        object_id=call.public_id,
        detail={"viewer": link.id, "name": name},
    )
    return link, token


def active(session: Session, call: Call) -> list[ViewerLink]:
    """The call's links not revoked, oldest first."""
    return list(
        session.exec(
            select(ViewerLink)
            .where(ViewerLink.call_id == call.id)
            .where(col(ViewerLink.revoked_at).is_(None))
            .order_by(col(ViewerLink.id))
        ).all()
    )


def open_link(
    session: Session, public_id: str, token: str, device_hash: str | None, source: str
) -> tuple[ViewerLink, Call] | ViewerProblem:
    """The link and its call, or why it does not open here (audited when the link is
    known: a refusal of a real link is something the officer may be asked about)."""
    if not token or len(token) > 128:
        return ViewerProblem.UNKNOWN
    link = session.exec(
        select(ViewerLink).where(ViewerLink.token_hash == hash_token(token))
    ).first()
    if link is None:
        return ViewerProblem.UNKNOWN
    call = session.get(Call, link.call_id)
    assert call is not None
    problem = None
    if call.public_id != public_id:
        problem = ViewerProblem.OTHER_CALL
    elif link.revoked_at is not None:
        problem = ViewerProblem.REVOKED
    elif CallState(call.state) is not CallState.CONNECTED:
        problem = (
            ViewerProblem.NOT_STARTED
            if CallState(call.state) in (CallState.INVITED, CallState.WAITING)
            else ViewerProblem.ENDED
        )
    elif link.device_hash is not None and link.device_hash != device_hash:
        problem = ViewerProblem.OTHER_DEVICE
    if problem is not None:
        audit.record(
            session,
            Actor("viewer", source),
            "viewer.link_refused",
            object_type="call",
            object_id=call.public_id,
            detail={"viewer": link.id, "problem": problem.value, "presented_for": public_id[:64]},
        )
        return problem
    return link, call


def bind_device(session: Session, link: ViewerLink, device_hash: str) -> None:
    """The first device to open the link keeps it; the link refuses every other."""
    if link.device_hash is None:
        link.device_hash = device_hash
        session.add(link)


def opened(session: Session, link: ViewerLink, call: Call, source: str) -> None:
    """The viewer's socket opened on the call (the page started watching)."""
    first = link.opened_at is None
    link.opened_at = link.opened_at or utcnow()
    session.add(link)
    audit.record(
        session,
        Actor(f"viewer:{link.id}", source),
        "viewer.opened" if first else "viewer.reopened",
        object_type="call",
        object_id=call.public_id,
        detail={"viewer": link.id, "name": link.name},
    )


def revoke(session: Session, actor: Actor, officer: User, call: Call, link_id: int) -> ViewerLink:
    link = session.get(ViewerLink, link_id)
    if link is None or link.call_id != call.id:
        raise ViewerError("there is no such viewer link on this call")
    if link.revoked_at is not None:
        raise ViewerError("that viewer link was already revoked")
    link.revoked_at = utcnow()
    link.revoked_by_id = officer.id
    session.add(link)
    audit.record(
        session,
        actor,
        "viewer.link_revoked",
        object_type="call",
        object_id=call.public_id,
        detail={"viewer": link.id, "name": link.name},
    )
    return link
