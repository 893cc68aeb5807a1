"""Signed-in browser sessions, kept server-side so they can be ended at once.

The cookie carries 256 random bits; the table keeps only their SHA-256, so a copy
of the database signs nobody in. A session ends when idle too long, when too old,
on sign-out, or when its user is disabled or changes password.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, col, select, update

from appliance.config import Settings
from appliance.models import User, WebSession, utcnow
from appliance.services import audit

# Writing last_seen on every request would make every page a write; a minute's
# slack against an idle limit of many minutes costs nothing.
TOUCH_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionPolicy:
        return cls(
            idle=timedelta(minutes=settings.session_idle_minutes),
            absolute=timedelta(hours=settings.session_absolute_hours),
        )


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(
    session: Session,
    user: User,
    source: str,
    *,
    needs_second_factor: bool = False,
    id_token_hint: str | None = None,
) -> tuple[str, WebSession]:
    """``id_token_hint``: the force's provider's ID token of this sign-in, kept for its
    sign-out and cleared when the session ends."""
    assert user.id is not None
    token = secrets.token_urlsafe(32)
    web_session = WebSession(
        token_hash=_hash(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        source=source[:64],
        needs_second_factor=needs_second_factor,
        id_token_hint=id_token_hint,
    )
    session.add(web_session)
    session.flush()
    return token, web_session


def look_up(
    session: Session, token: str | None, policy: SessionPolicy
) -> tuple[tuple[WebSession, User] | None, bool]:
    """Read only: the live session and user for a cookie (or None), and whether
    ``resolve`` must run in a writing session (to end the session, or to note once a
    minute that it was seen). A page thus takes the write lock about once a minute per
    session instead of on every request, and never waits on another writer to read."""
    if not token or len(token) > 128:
        return None, False
    web_session = session.exec(
        select(WebSession).where(WebSession.token_hash == _hash(token))
    ).first()
    if web_session is None or web_session.ended_at is not None:
        return None, False
    user = session.get(User, web_session.user_id)
    now = utcnow()
    if (
        user is None
        or user.disabled
        or now - web_session.last_seen_at > policy.idle
        or now - web_session.created_at > policy.absolute
    ):
        return None, True
    return (web_session, user), now - web_session.last_seen_at > TOUCH_INTERVAL


def resolve(
    session: Session, token: str | None, policy: SessionPolicy
) -> tuple[WebSession, User] | None:
    """The live session and user for a cookie, or None (unknown, tampered, expired,
    ended); ends an expired session and notes a seen one (``look_up`` says when)."""
    found, write = look_up(session, token, policy)
    if not write:
        return found
    web_session = session.exec(
        select(WebSession).where(WebSession.token_hash == _hash(token or ""))
    ).one()
    now = utcnow()
    if found is None:
        web_session.ended_at = now
        web_session.id_token_hint = None
    else:
        web_session.last_seen_at = now
    session.add(web_session)
    return found


def socket_refusal(session: Session, session_id: int, policy: SessionPolicy) -> str | None:
    """Why a socket opened under this signed-in session must close now (None: it may
    stay). Read-only, for a live call's re-authorisation every message and every few
    seconds: signed out, account disabled, or past the session's absolute age. The idle
    limit is not applied: the open socket is the activity."""
    web_session = session.get(WebSession, session_id)
    user = session.get(User, web_session.user_id) if web_session is not None else None
    if web_session is not None and (user is None or user.disabled):
        return "account disabled"
    if web_session is None or web_session.ended_at is not None:
        return "signed out"
    if utcnow() - web_session.created_at > policy.absolute:
        return "session expired: sign in again"
    return None


def sign_out(session: Session, web_session: WebSession, user: User, source: str) -> str | None:
    """End the session; returns the provider's ID token it held (for the provider's
    sign-out page), which is not kept."""
    hint = web_session.id_token_hint
    if web_session.ended_at is None or hint is not None:
        web_session.ended_at = web_session.ended_at or utcnow()
        web_session.id_token_hint = None
        session.add(web_session)
    audit.record(
        session,
        audit.Actor(user.username, source),
        "logout",
        object_type="user",
        object_id=user.username,
    )
    return hint


def forget_lapsed_hints(session: Session, policy: SessionPolicy) -> int:
    """Clear the provider's ID token from sessions past their absolute age that nobody
    came back to end (an ended session has none): nothing of a sign-in is kept longer
    than the sign-in could be used."""
    lapsed = utcnow() - policy.absolute
    statement = (
        update(WebSession)
        .where(col(WebSession.created_at) < lapsed, col(WebSession.id_token_hint).is_not(None))
        .values(id_token_hint=None)
    )
    return int(session.exec(statement).rowcount)


def end_all_for(session: Session, user_id: int, except_id: int | None = None) -> None:
    statement = (
        update(WebSession)
        .where(col(WebSession.user_id) == user_id, col(WebSession.ended_at).is_(None))
        .values(ended_at=utcnow(), id_token_hint=None)
    )
    if except_id is not None:
        statement = statement.where(col(WebSession.id) != except_id)
    session.exec(statement)
