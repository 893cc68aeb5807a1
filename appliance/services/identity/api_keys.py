"""API keys for integrations such as the force's CAD system.

A key is shown once when made; the table keeps its SHA-256 and a short prefix so an
admin can tell keys apart in a list or an audit event. A refused key is audited with
its prefix only.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlmodel import Session, col, select

from appliance.models import ApiKey, utcnow
from appliance.services import audit
from appliance.services.audit import Actor

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
PREFIX_LEN = 12


class ApiKeyError(ValueError):
    """The message is for the admin."""


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create(session: Session, actor: Actor, name: str) -> tuple[ApiKey, str]:
    name = name.strip().lower()
    if not NAME_RE.match(name):
        raise ApiKeyError("a key name is 2–64 lower-case letters, digits, '.', '_' or '-'")
    if session.exec(select(ApiKey.id).where(ApiKey.name == name)).first() is not None:
        raise ApiKeyError(f"a key named {name!r} already exists; revoke it or pick another name")
    key = "evr_" + secrets.token_urlsafe(32)
    api_key = ApiKey(name=name, prefix=key[:PREFIX_LEN], key_hash=_hash(key), created_by=actor.name)
    session.add(api_key)
    session.flush()
    audit.record(
        session,
        actor,
        "api_key.created",
        object_type="api_key",
        object_id=name,
        detail={"prefix": api_key.prefix},
    )
    return api_key, key


def revoke(session: Session, actor: Actor, name: str) -> ApiKey:
    api_key = session.exec(select(ApiKey).where(ApiKey.name == name.strip().lower())).first()
    if api_key is None:
        raise ApiKeyError(f"no API key named {name!r}")
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
        session.add(api_key)
        audit.record(
            session, actor, "api_key.revoked", object_type="api_key", object_id=api_key.name
        )
    return api_key


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.exec(select(ApiKey).order_by(col(ApiKey.name))).all())


def authenticate(session: Session, presented: str | None, source: str) -> ApiKey | None:
    """The live key presented, or None (missing, unknown or revoked: refused and audited)."""
    if presented:
        api_key = session.exec(select(ApiKey).where(ApiKey.key_hash == _hash(presented))).first()
        if api_key is not None and api_key.revoked_at is None:
            api_key.last_used_at = utcnow()
            session.add(api_key)
            return api_key
        reason = "revoked" if api_key is not None else "unknown"
    else:
        reason = "missing"
    audit.record(
        session,
        Actor("api", source),
        "api.refused",
        object_type="api_key",
        object_id=(presented or "")[:PREFIX_LEN],
        detail={"reason": reason},
    )
    return None
