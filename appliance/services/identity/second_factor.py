"""A second factor for the box's own accounts: an authenticator app (TOTP, RFC 6238, by
pyotp), security keys (WebAuthn: security_keys.py) and one-use recovery codes. All
audited.

The box's own accounts are its break-glass way in when the force's provider cannot be
reached, so they must be strong on their own: with ``local_admin_totp_required`` an admin
reaches nothing but enrolment until an authenticator is confirmed or a key enrolled.
Enrolment shows a QR code drawn on the box (no outside service sees the secret) and is
confirmed with a code, so a mistyped secret never locks anyone out. Ten recovery codes
are shown once, when an app is confirmed or a first key enrolled; only their SHA-256 is
kept. A code is accepted one step either side of now (30 s of clock drift), and never
twice: ``last_step`` remembers the newest step used. ``evr user reset-factor`` on the
box's shell removes the factors (a lost phone or key).
"""

from __future__ import annotations

import hashlib
import io
import secrets
from dataclasses import dataclass
from typing import Any

import pyotp
import qrcode
import qrcode.image.svg
from sqlmodel import Session, col, delete, select

from appliance.models import (
    AuditEvent,
    RecoveryCode,
    Role,
    SecurityKey,
    TotpFactor,
    User,
    WebSession,
    utcnow,
)
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.identity import web_sessions
from appliance.services.identity.accounts import AccountError, require, roles_of

RECOVERY_CODES = 10
DRIFT_STEPS = 1
MAX_FAILURES = 5  # wrong codes in one signed-in-by-password session before it ends


def _hash(code: str) -> str:
    return hashlib.sha256(_normal(code).encode()).hexdigest()


def _normal(code: str) -> str:
    return "".join(c for c in code.lower() if c.isalnum())


def confirmed(session: Session, user_id: int) -> TotpFactor | None:
    return session.exec(
        select(TotpFactor).where(
            TotpFactor.user_id == user_id, col(TotpFactor.confirmed_at).is_not(None)
        )
    ).first()


def has_factor(session: Session, user_id: int) -> bool:
    """A confirmed authenticator app or a security key: a password alone no longer signs
    this account in."""
    if confirmed(session, user_id) is not None:
        return True
    return (
        session.exec(select(SecurityKey.id).where(SecurityKey.user_id == user_id)).first()
        is not None
    )


def required_for(user: User, roles: set[Role] | frozenset[Role], required: bool) -> bool:
    """Whether this account must have a confirmed factor before it may do anything:
    a local admin, when the setting says so (a force account's MFA is the provider's)."""
    return required and user.oidc_subject is None and Role.ADMIN in roles


@dataclass(frozen=True)
class Enrolment:
    secret: str
    uri: str
    qr_svg: str


def begin(session: Session, user: User, issuer: str) -> Enrolment:
    """A new secret for an account with no confirmed factor (one waiting is replaced:
    whoever reloads the page scans the code they see)."""
    assert user.id is not None
    if user.oidc_subject is not None:
        raise AccountError("a force account's second factor is the force's")
    if confirmed(session, user.id) is not None:
        raise AccountError("an authenticator is enrolled already: ask for a reset first")
    session.exec(delete(TotpFactor).where(col(TotpFactor.user_id) == user.id))
    secret = pyotp.random_base32()
    session.add(TotpFactor(user_id=user.id, secret=secret))
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=issuer[:64])
    return Enrolment(secret, uri, _svg(uri))


def _svg(uri: str) -> str:
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    out = io.BytesIO()
    image.save(out)
    return out.getvalue().decode()


def _check(factor: TotpFactor, code: str) -> bool:
    """True and remembered when ``code`` is a current code not used before."""
    code = _normal(code)
    if len(code) != 6 or not code.isdigit():
        return False
    totp = pyotp.TOTP(factor.secret)
    now_step = totp.timecode(utcnow())
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        if step > factor.last_step and secrets.compare_digest(totp.generate_otp(step), code):
            factor.last_step = step
            return True
    return False


def confirm(session: Session, user: User, code: str, source: str) -> list[str] | None:
    """Confirm the waiting secret with a code from the app; returns the recovery codes to
    show once (None: the code was wrong, nothing changed)."""
    assert user.id is not None
    factor = session.exec(
        select(TotpFactor).where(
            TotpFactor.user_id == user.id, col(TotpFactor.confirmed_at).is_(None)
        )
    ).first()
    if factor is None or not _check(factor, code):
        return None
    factor.confirmed_at = utcnow()
    session.add(factor)
    codes = new_recovery_codes(session, user.id)
    audit.record(
        session,
        Actor(user.username, source),
        "user.second_factor_enrolled",
        object_type="user",
        object_id=user.username,
        detail={"kind": "totp", "recovery_codes": RECOVERY_CODES},
    )
    return codes


def new_recovery_codes(session: Session, user_id: int) -> list[str]:
    """Ten fresh codes in place of any before, to show once; only their hashes are kept."""
    drop_recovery_codes(session, user_id)
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = secrets.token_hex(6)
        codes.append(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
    for code_text in codes:
        session.add(RecoveryCode(user_id=user_id, code_hash=_hash(code_text)))
    return codes


def drop_recovery_codes(session: Session, user_id: int) -> None:
    session.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user_id))


def verify(session: Session, web_session: WebSession, user: User, code: str, source: str) -> bool:
    """The second step of a password sign-in: an authenticator code, or a recovery code
    (used up). Right: the session is whole. Wrong: audited; after ``MAX_FAILURES`` in
    this session it ends, and the password must be given again."""
    assert user.id is not None
    factor = confirmed(session, user.id)
    kind = None
    if factor is not None and _check(factor, code):
        kind = "totp"
        session.add(factor)
    else:
        recovery = session.exec(
            select(RecoveryCode).where(
                RecoveryCode.user_id == user.id,
                RecoveryCode.code_hash == _hash(code),
                col(RecoveryCode.used_at).is_(None),
            )
        ).first()
        if recovery is not None:
            recovery.used_at = utcnow()
            session.add(recovery)
            kind = "recovery_code"
    if kind is None:
        failed(session, web_session, user, source, {})
        return False
    left = None
    if kind == "recovery_code":
        left = len(
            session.exec(
                select(RecoveryCode.id).where(
                    RecoveryCode.user_id == user.id, col(RecoveryCode.used_at).is_(None)
                )
            ).all()
        )
    passed(
        session,
        web_session,
        user,
        source,
        {"kind": kind} | ({"recovery_codes_left": left} if left is not None else {}),
    )
    return True


def passed(
    session: Session, web_session: WebSession, user: User, source: str, detail: dict[str, Any]
) -> None:
    """The second step is done: the session is whole, and the trail says how."""
    web_session.needs_second_factor = False
    session.add(web_session)
    audit.record(
        session,
        Actor(user.username, source),
        "login.second_factor",
        object_type="user",
        object_id=user.username,
        detail=detail,
    )


def failed(
    session: Session, web_session: WebSession, user: User, source: str, detail: dict[str, Any]
) -> None:
    """A wrong code or key answer, audited; the ``MAX_FAILURES``th in this session ends it,
    and the password must be given again."""
    failures = 1 + _failures(session, user, web_session)
    audit.record(
        session,
        Actor(user.username, source),
        "login.second_factor_failed",
        object_type="user",
        object_id=user.username,
        detail={"session": web_session.id, "failures": failures} | detail,
    )
    if failures >= MAX_FAILURES:
        web_session.ended_at = utcnow()
        session.add(web_session)


def _failures(session: Session, user: User, web_session: WebSession) -> int:
    rows = session.exec(
        select(AuditEvent.detail).where(
            AuditEvent.action == "login.second_factor_failed",
            AuditEvent.object_id == user.username,
            col(AuditEvent.at) >= web_session.created_at,
        )
    ).all()
    return sum(1 for detail in rows if detail.get("session") == web_session.id)


def reset(session: Session, actor: Actor, username: str) -> User:
    """Remove an account's factors (its authenticator app and every security key) and
    recovery codes (a lost phone or key) and end its sessions: the box's shell only
    (``evr user reset-factor``), as for a privileged password."""
    user = require(session, username)
    assert user.id is not None
    app = confirmed(session, user.id) is not None
    keys = session.exec(select(SecurityKey.name).where(SecurityKey.user_id == user.id)).all()
    session.exec(delete(SecurityKey).where(col(SecurityKey.user_id) == user.id))
    session.exec(delete(TotpFactor).where(col(TotpFactor.user_id) == user.id))
    session.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user.id))
    web_sessions.end_all_for(session, user.id)
    audit.record(
        session,
        actor,
        "user.second_factor_reset",
        object_type="user",
        object_id=user.username,
        detail={
            "admin": Role.ADMIN in roles_of(session, user.id),
            "authenticator_app": app,
            "security_keys": sorted(keys),
        },
    )
    return user
