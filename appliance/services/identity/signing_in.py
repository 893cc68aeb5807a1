"""Signing in with a local password: the account read, the Argon2 check outside any
transaction, and failures counted towards a lock that doubles each time (up to
``MAX_LOCK``); all audited. Accounts themselves are in :mod:`accounts`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlmodel import Session

from appliance.config import Settings
from appliance.models import User, utcnow
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.identity.accounts import get_by_username
from appliance.services.identity.passwords import hash_password, needs_rehash, verify_password

MAX_LOCK = timedelta(hours=24)


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 5
    lockout_seconds: int = 300
    max_lockout_seconds: int = int(MAX_LOCK.total_seconds())

    @classmethod
    def from_settings(cls, settings: Settings) -> LockoutPolicy:
        return cls(
            settings.login_max_failures,
            settings.login_lockout_seconds,
            settings.login_lockout_max_seconds,
        )

    def lock_length(self, lockouts: int) -> timedelta:
        doubled = self.lockout_seconds * 2 ** min(max(lockouts - 1, 0), 32)
        return timedelta(seconds=min(doubled, self.max_lockout_seconds))


class SignInStatus(StrEnum):
    OK = "ok"
    WRONG = "wrong"
    LOCKED = "locked"
    NOT_BREAK_GLASS = "not_break_glass"


@dataclass(frozen=True)
class SignInResult:
    status: SignInStatus
    user: User | None = None
    locked_until: datetime | None = None


@dataclass(frozen=True)
class Credentials:
    """What a sign-in needs from the account, read before the password is checked."""

    user_id: int | None
    username: str
    password_hash: str | None
    locked_until: datetime | None


def credentials(session: Session, username: str) -> Credentials:
    """Read the account (a reader session will do): the slow check runs after, outside
    any transaction, so a flood of sign-ins never holds the database while hashing."""
    user = get_by_username(session, username)
    attempted = username.strip().lower()[:64]
    if user is None:
        return Credentials(None, attempted, None, None)
    # An account of the force's provider has no password here: checked against the dummy
    # hash (the same cost as any other), it never matches.
    password_hash = None if user.oidc_subject is not None else user.password_hash
    return Credentials(user.id, user.username, password_hash, user.locked_until)


def check_password(creds: Credentials, password: str) -> bool:
    """The Argon2 check (~0.1 s of CPU): the same cost for a missing or locked account."""
    locked = creds.locked_until is not None and creds.locked_until > utcnow()
    return verify_password(None if locked else creds.password_hash, password)


def check_and_refresh(creds: Credentials, password: str) -> tuple[bool, str | None]:
    """``check_password``, and a new hash when the password matched one made with older
    Argon2 parameters (the day after an upgrade changes them, every sign-in has one):
    both before the transaction that records them, as every hash is."""
    matched = check_password(creds, password)
    if matched and creds.password_hash is not None and needs_rehash(creds.password_hash):
        return matched, hash_password(password)
    return matched, None


def sign_in(
    session: Session,
    username: str,
    password: str,
    source: str,
    policy: LockoutPolicy,
    *,
    break_glass_only: bool = False,
) -> SignInResult:
    """Read, check and record in one session (the CLI and tests; the web splits them)."""
    creds = credentials(session, username)
    matched, rehashed = check_and_refresh(creds, password)
    return record_sign_in(
        session,
        creds,
        matched,
        rehashed,
        source,
        policy,
        break_glass_only=break_glass_only,
    )


def record_sign_in(
    session: Session,
    creds: Credentials,
    matched: bool,
    rehashed: str | None,
    source: str,
    policy: LockoutPolicy,
    tally: audit.RefusalTally | None = None,
    *,
    break_glass_only: bool = False,
) -> SignInResult:
    """Record a checked sign-in, counting failures towards a lock that doubles each time.

    The account is read again here: if its password changed since ``creds`` were read,
    the check no longer counts. ``rehashed`` (``check_and_refresh``) replaces a hash made
    with older parameters. Failures for usernames nobody has go through ``tally``
    (one row per source a minute) when given.

    ``break_glass_only`` (single sign-on is on): a right password of an account not
    marked break-glass is refused and audited. Only after the password matched, so the
    answer tells no guesser which accounts are the break-glass ones.
    """
    now = utcnow()
    if creds.user_id is None:
        write = tally.record if tally is not None else audit.record
        write(
            session,
            Actor("anonymous", source),
            "login.failed",
            object_type="user",
            object_id=creds.username,
            detail={"reason": "unknown_user"},
        )
        return SignInResult(SignInStatus.WRONG)
    user = session.get(User, creds.user_id)
    if user is None:
        return SignInResult(SignInStatus.WRONG)
    matched = (
        matched and creds.password_hash is not None and user.password_hash == creds.password_hash
    )
    actor = Actor(user.username, source)
    if user.locked_until is not None and user.locked_until > now:
        audit.record(
            session,
            actor,
            "login.refused",
            object_type="user",
            object_id=user.username,
            detail={"reason": "locked"},
        )
        return SignInResult(SignInStatus.LOCKED, locked_until=user.locked_until)
    if not matched or user.disabled:
        reason = "disabled" if user.disabled else "wrong_password"
        audit.record(
            session,
            actor,
            "login.failed",
            object_type="user",
            object_id=user.username,
            detail={"reason": reason},
        )
        if user.disabled:
            return SignInResult(SignInStatus.WRONG)
        user.failed_logins += 1
        if user.failed_logins >= policy.max_failures:
            user.lockouts += 1
            user.failed_logins = 0
            user.locked_until = now + policy.lock_length(user.lockouts)
            audit.record(
                session,
                Actor("system", source),
                "user.locked",
                object_type="user",
                object_id=user.username,
                detail={"until": user.locked_until.isoformat(), "lockouts": user.lockouts},
            )
        session.add(user)
        if user.locked_until is not None and user.locked_until > now:
            return SignInResult(SignInStatus.LOCKED, locked_until=user.locked_until)
        return SignInResult(SignInStatus.WRONG)
    if break_glass_only and not user.break_glass:
        audit.record(
            session,
            actor,
            "login.refused",
            object_type="user",
            object_id=user.username,
            detail={"reason": "not_break_glass"},
        )
        return SignInResult(SignInStatus.NOT_BREAK_GLASS)
    if rehashed is not None and user.password_hash == creds.password_hash:
        user.password_hash = rehashed
    user.failed_logins = 0
    user.lockouts = 0
    user.locked_until = None
    user.last_login_at = now
    session.add(user)
    audit.record(session, actor, "login.succeeded", object_type="user", object_id=user.username)
    return SignInResult(SignInStatus.OK, user=user)
