"""People and incidents for tests that need a signed-in handler and something to act on."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import Session

from appliance.config import Settings
from appliance.db import Database
from appliance.models import Incident, Role, User
from appliance.services.audit import Actor
from appliance.services.calls import invites, life, states
from appliance.services.calls.invites import Consent
from appliance.services.identity import accounts
from appliance.services.intake import incidents

PASSWORD = "a long enough passphrase"


def add_user(
    session: Session,
    username: str,
    *roles: Role,
    display_name: str = "Pat",
    password: str = PASSWORD,
) -> User:
    """An account that has already chosen its own password (no forced change)."""
    user, _ = accounts.create_user(
        session, Actor("t"), username, display_name, set(roles), password=password
    )
    user.must_change_password = False
    session.add(user)
    return user


def add_incident(
    session: Session, owner: User | None, cad_reference: str, **fields: Any
) -> Incident:
    """A grade 3 theft reported by Jane Marple, unless ``fields`` say otherwise."""
    values: dict[str, Any] = {
        "grade": 3,
        "category": "Theft",
        "caller_name": "Jane Marple",
        "caller_phone": "07700 900123",
        **fields,
    }
    actor = Actor(owner.username if owner else "api:cad")
    return incidents.create(session, actor, owner, cad_reference=cad_reference, **values)


def connected_call(db: Database, settings: Settings, username: str, cad_reference: str) -> str:
    """A handler ``username`` (made here) whose caller agreed and was admitted: the call is
    connected in the database, with no media. Returns the call's public id."""
    with db.session() as session:
        user = add_user(session, username, Role.HANDLER)
        incident = add_incident(session, user, cad_reference)
        _, call, _ = invites.create_invite(
            session, Actor(username), incident, user, timedelta(hours=1)
        )
        invites.record_consent(session, call, Consent(True, False, False), "d" * 64, "t")
        states.caller_waiting(session, call, "t")
        life.admit(session, settings, call, user, "t")
        return call.public_id
