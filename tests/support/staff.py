"""People and incidents for tests that need a signed-in handler and something to act on."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from appliance.models import Incident, Role, User
from appliance.services.audit import Actor
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
