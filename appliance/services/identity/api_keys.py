"""API keys for integrations such as the force's CAD system.

A key is shown once when made; the table keeps its SHA-256 and a short prefix so an
admin can tell keys apart in a list or an audit event. A refused key is audited with
its prefix only.

An integration may instead present a client certificate of the force's CA (on the CAD
API's own listener, docs/cad.md): the settings map its subject or one of its alternative
names to an API client's name, so one client, one revocation, whichever way it proves
itself.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping

from cryptography import x509
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


def look_up(session: Session, presented: str | None) -> tuple[ApiKey | None, str]:
    """The live key presented (a reader session will do), or None and why not:
    ``missing``, ``unknown`` or ``revoked``."""
    if not presented:
        return None, "missing"
    api_key = session.exec(select(ApiKey).where(ApiKey.key_hash == _hash(presented))).first()
    if api_key is None:
        return None, "unknown"
    if api_key.revoked_at is not None:
        return None, "revoked"
    return api_key, ""


def mark_used(session: Session, api_key: ApiKey) -> None:
    api_key = session.merge(api_key)
    api_key.last_used_at = utcnow()
    session.add(api_key)


def prefix_of(presented: str | None) -> str:
    """What an audit row may keep of a refused key."""
    return (presented or "")[:PREFIX_LEN]


def authenticate(session: Session, presented: str | None, source: str) -> ApiKey | None:
    """The live key presented, or None (missing, unknown or revoked: refused and audited
    one row each; the web app goes through the refusal tally instead)."""
    api_key, reason = look_up(session, presented)
    if api_key is not None:
        mark_used(session, api_key)
        return api_key
    audit.record(
        session,
        Actor("api", source),
        "api.refused",
        object_type="api_key",
        object_id=prefix_of(presented),
        detail={"reason": reason},
    )
    return None


def certificate_names(der: bytes) -> list[str]:
    """What a certificate may be known by in the settings' map: its subject (RFC 4514)
    then each alternative name as ``DNS:``, ``URI:`` or ``email:`` and the value."""
    cert = x509.load_der_x509_certificate(der)
    names = [cert.subject.rfc4514_string()]
    try:
        alternatives = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return names
    for kind, prefix in (
        (x509.DNSName, "DNS:"),
        (x509.UniformResourceIdentifier, "URI:"),
        (x509.RFC822Name, "email:"),
    ):
        names.extend(prefix + value for value in alternatives.get_values_for_type(kind))
    return names


def look_up_certificate(
    session: Session, names: list[str], certificates: Mapping[str, str]
) -> tuple[ApiKey | None, str]:
    """The live API client a verified certificate acts as (a reader session will do), or
    None and why not: ``unmapped`` (the force CA issued it, the box was not told whose it
    is), ``unknown`` (mapped to a client that does not exist) or ``revoked``."""
    client_name = next((certificates[name] for name in names if name in certificates), None)
    if client_name is None:
        return None, "unmapped"
    api_key = session.exec(select(ApiKey).where(ApiKey.name == client_name)).first()
    if api_key is None:
        return None, "unknown"
    if api_key.revoked_at is not None:
        return None, "revoked"
    return api_key, ""
