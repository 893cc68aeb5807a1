"""Security keys (WebAuthn, by py_webauthn) as a second factor for the box's own
accounts, beside the authenticator app: enrolled by name (several per account), used
after a right password, removed by their owner or by the shell's reset. All audited.

The relying party is the box as its staff reach it: the host of ``public_url`` is the RP
id and its origin the only one accepted, so an assertion made for any other site is
refused. Each ceremony's challenge is kept on the web session that asked for it, for five
minutes, and used up by the first answer, right or wrong: a challenge cannot be answered
twice, nor by another browser. A key is a second factor after a password, so touching it
is enough (user verification not required). The signature counter a key reports must
grow: an assertion replayed, or made by a cloned key, is refused and audited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import webauthn
from sqlmodel import Session, col, select
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, generate_challenge
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from appliance.models import SecurityKey, User, WebSession, utcnow
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.identity import second_factor
from appliance.services.identity.accounts import AccountError

CHALLENGE_SECONDS = 300
MAX_KEYS = 10
NAME_LENGTH = 64


@dataclass(frozen=True)
class RelyingParty:
    id: str
    origin: str
    name: str

    @classmethod
    def from_public_url(cls, public_url: str, force_name: str) -> RelyingParty:
        parts = urlsplit(public_url)
        assert parts.hostname, public_url
        return cls(parts.hostname, f"{parts.scheme}://{parts.netloc}", f"EVR {force_name}"[:64])


def keys_of(session: Session, user_id: int) -> list[SecurityKey]:
    return list(
        session.exec(
            select(SecurityKey).where(SecurityKey.user_id == user_id).order_by(col(SecurityKey.id))
        ).all()
    )


def _descriptors(keys: list[SecurityKey]) -> list[PublicKeyCredentialDescriptor]:
    known = {t.value for t in AuthenticatorTransport}
    return [
        PublicKeyCredentialDescriptor(
            id=base64url_to_bytes(key.credential_id),
            transports=[AuthenticatorTransport(t) for t in key.transports.split() if t in known],
        )
        for key in keys
    ]


def _new_challenge(session: Session, web_session: WebSession) -> bytes:
    challenge = generate_challenge()
    web_session.key_challenge = bytes_to_base64url(challenge)
    web_session.key_challenge_at = utcnow()
    session.add(web_session)
    return challenge


def _take_challenge(session: Session, web_session: WebSession) -> bytes | None:
    """The session's challenge, used up; None when there is none or it is too old."""
    challenge, at = web_session.key_challenge, web_session.key_challenge_at
    web_session.key_challenge = None
    web_session.key_challenge_at = None
    session.add(web_session)
    if challenge is None or at is None:
        return None
    if utcnow() - at > timedelta(seconds=CHALLENGE_SECONDS):
        return None
    return base64url_to_bytes(challenge)


def registration_options(
    session: Session, web_session: WebSession, user: User, rp: RelyingParty
) -> str:
    """What the browser passes to ``navigator.credentials.create`` (JSON): the keys the
    account has already are excluded, so one key is not enrolled twice."""
    assert user.id is not None
    if user.oidc_subject is not None:
        raise AccountError("a force account's second factor is the force's")
    keys = keys_of(session, user.id)
    if len(keys) >= MAX_KEYS:
        raise AccountError(f"an account holds at most {MAX_KEYS} keys: remove one first")
    options = webauthn.generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_name=user.username,
        user_id=f"evr-user-{user.id}".encode(),
        user_display_name=user.display_name,
        challenge=_new_challenge(session, web_session),
        timeout=CHALLENGE_SECONDS * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.DISCOURAGED,
            user_verification=UserVerificationRequirement.DISCOURAGED,
        ),
        exclude_credentials=_descriptors(keys),
    )
    return webauthn.options_to_json(options)


@dataclass(frozen=True)
class Enrolled:
    key: SecurityKey | None
    recovery_codes: list[str]  # shown once: the account's first factor
    refusal: str = ""


def register(
    session: Session,
    web_session: WebSession,
    user: User,
    rp: RelyingParty,
    name: str,
    credential: str,
    source: str,
) -> Enrolled:
    """Check the key's answer to this session's challenge and keep its public key under
    ``name``. A refusal is returned (and audited), not raised, so the record commits."""
    assert user.id is not None
    name = " ".join(name.split())[:NAME_LENGTH]
    challenge = _take_challenge(session, web_session)
    actor = Actor(user.username, source)
    if not name:
        return Enrolled(None, [], "Give the key a name, such as where it is kept.")
    if session.exec(
        select(SecurityKey.id).where(SecurityKey.user_id == user.id, SecurityKey.name == name)
    ).first():
        return Enrolled(None, [], f"You have a key called {name!r} already: choose another name.")
    reason = "no_challenge"
    if challenge is not None:
        try:
            verified = webauthn.verify_registration_response(
                credential=_parsed(credential),
                expected_challenge=challenge,
                expected_rp_id=rp.id,
                expected_origin=rp.origin,
            )
        except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
            reason = _reason(exc)
        else:
            credential_id = bytes_to_base64url(verified.credential_id)
            if session.exec(
                select(SecurityKey.id).where(SecurityKey.credential_id == credential_id)
            ).first():
                reason = "key_enrolled_already"
            else:
                first = not second_factor.has_factor(session, user.id)
                key = SecurityKey(
                    user_id=user.id,
                    name=name,
                    credential_id=credential_id,
                    public_key=bytes_to_base64url(verified.credential_public_key),
                    sign_count=verified.sign_count,
                    transports=" ".join(_transports(credential)),
                )
                session.add(key)
                codes = second_factor.new_recovery_codes(session, user.id) if first else []
                audit.record(
                    session,
                    actor,
                    "user.second_factor_enrolled",
                    object_type="user",
                    object_id=user.username,
                    detail={"kind": "security_key", "name": name}
                    | ({"recovery_codes": len(codes)} if codes else {}),
                )
                return Enrolled(key, codes)
    audit.record(
        session,
        actor,
        "user.second_factor_refused",
        object_type="user",
        object_id=user.username,
        detail={"kind": "security_key", "reason": reason},
    )
    return Enrolled(None, [], "The key's answer was not accepted: try again.")


def authentication_options(
    session: Session, web_session: WebSession, user: User, rp: RelyingParty
) -> str:
    """What the browser passes to ``navigator.credentials.get`` (JSON): the account's
    keys only."""
    assert user.id is not None
    options = webauthn.generate_authentication_options(
        rp_id=rp.id,
        challenge=_new_challenge(session, web_session),
        timeout=CHALLENGE_SECONDS * 1000,
        allow_credentials=_descriptors(keys_of(session, user.id)),
        user_verification=UserVerificationRequirement.DISCOURAGED,
    )
    return webauthn.options_to_json(options)


def authenticate(
    session: Session,
    web_session: WebSession,
    user: User,
    rp: RelyingParty,
    credential: str,
    source: str,
) -> bool:
    """The second step of a password sign-in by a key: it must be one of this account's
    keys, answering this session's challenge for this box, its counter grown. Wrong
    answers count with wrong codes (``second_factor.failed``)."""
    assert user.id is not None
    challenge = _take_challenge(session, web_session)
    reason, key = "no_challenge", None
    if challenge is not None:
        try:
            parsed = _parsed(credential)
            credential_id = str(parsed["id"])
            key = session.exec(
                select(SecurityKey).where(SecurityKey.credential_id == credential_id)
            ).first()
            if key is None:
                reason = "unknown_key"
            elif key.user_id != user.id:
                reason, key = "another_users_key", None
            else:
                verified = webauthn.verify_authentication_response(
                    credential=parsed,
                    expected_challenge=challenge,
                    expected_rp_id=rp.id,
                    expected_origin=rp.origin,
                    credential_public_key=base64url_to_bytes(key.public_key),
                    credential_current_sign_count=key.sign_count,
                )
                key.sign_count = verified.new_sign_count
                key.last_used_at = utcnow()
                session.add(key)
                second_factor.passed(
                    session, web_session, user, source, {"kind": "security_key", "name": key.name}
                )
                return True
        except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
            reason = _reason(exc)
    detail: dict[str, Any] = {"kind": "security_key", "reason": reason}
    if key is not None:
        detail["name"] = key.name
    second_factor.failed(session, web_session, user, source, detail)
    return False


def remove(session: Session, user: User, key_id: int, source: str) -> SecurityKey | None:
    """The owner removes one of their keys. With it went the last factor, the recovery
    codes go too (they stand in for a factor that is no longer there)."""
    assert user.id is not None
    key = session.exec(
        select(SecurityKey).where(SecurityKey.id == key_id, SecurityKey.user_id == user.id)
    ).first()
    if key is None:
        return None
    session.delete(key)
    session.flush()
    if not second_factor.has_factor(session, user.id):
        second_factor.drop_recovery_codes(session, user.id)
    audit.record(
        session,
        Actor(user.username, source),
        "user.second_factor_removed",
        object_type="user",
        object_id=user.username,
        detail={"kind": "security_key", "name": key.name},
    )
    return key


def _parsed(credential: str) -> dict[str, Any]:
    value = json.loads(credential)
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        raise ValueError("not a credential")
    return value


def _transports(credential: str) -> list[str]:
    response = _parsed(credential).get("response", {})
    transports = response.get("transports", []) if isinstance(response, dict) else []
    known = {t.value for t in AuthenticatorTransport}
    return [t for t in transports if isinstance(t, str) and t in known][:8]


def _reason(exc: Exception) -> str:
    """What the audit trail keeps of a refused answer: py_webauthn's message names the
    check that failed (challenge, origin, RP id, signature, counter)."""
    if isinstance(exc, WebAuthnException):
        return str(exc)[:200] or type(exc).__name__
    return "malformed"
