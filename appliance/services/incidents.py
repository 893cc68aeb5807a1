"""Incidents, and who may act on one. (The CAD API and eligibility come with the intake work.)"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, col, select

from appliance.models import Incident, Role, User
from appliance.services import audit
from appliance.services.audit import Actor

CAD_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_-]{1,63}$")
# E.164, or a UK number written as people write it (07700 900123, +44 7700 900123).
PHONE_CLEAN_RE = re.compile(r"[\s()-]")


class IncidentError(ValueError):
    """The message is for the handler."""


def normalise_phone(raw: str) -> str:
    """A UK mobile or landline, or any E.164 number, as E.164 (+447700900123)."""
    number = PHONE_CLEAN_RE.sub("", raw.strip())
    if number.startswith("00"):
        number = "+" + number[2:]
    elif number.startswith("0"):
        number = "+44" + number[1:]
    if not re.fullmatch(r"\+[1-9]\d{7,14}", number):
        raise IncidentError("the phone number is not a valid UK or international number")
    if number.startswith("+44") and len(number) != 13:
        raise IncidentError("a UK number has 11 digits starting with 0 (or +44 and 10 digits)")
    return number


def create(
    session: Session,
    actor: Actor,
    created_by: User,
    *,
    cad_reference: str,
    grade: int,
    category: str,
    caller_name: str,
    caller_phone: str,
    summary: str = "",
    location_text: str = "",
    received_at: datetime | None = None,
) -> Incident:
    cad_reference = cad_reference.strip()
    if not CAD_RE.match(cad_reference):
        raise IncidentError("a CAD reference is 2–64 letters, digits, '/', '_' or '-'")
    if grade not in (1, 2, 3, 4):
        raise IncidentError("the grade is 1, 2, 3 or 4")
    if not category.strip():
        raise IncidentError("choose a category")
    if not caller_name.strip():
        raise IncidentError("the caller's name is needed")
    if session.exec(select(Incident.id).where(Incident.cad_reference == cad_reference)).first():
        raise IncidentError(f"an incident with CAD reference {cad_reference} already exists")
    incident = Incident(
        cad_reference=cad_reference,
        grade=grade,
        category=category.strip()[:64],
        caller_name=caller_name.strip()[:120],
        caller_phone=normalise_phone(caller_phone),
        summary=summary.strip()[:2000],
        location_text=location_text.strip()[:500],
        created_by_id=created_by.id or 0,
        owner_id=created_by.id,
        **({"received_at": received_at} if received_at else {}),
    )
    session.add(incident)
    session.flush()
    audit.record(
        session,
        actor,
        "incident.created",
        object_type="incident",
        object_id=incident.cad_reference,
        detail={"grade": grade},
    )
    return incident


def may_act(user: User, roles: Iterable[Role], incident: Incident) -> bool:
    """A handler acts on the incidents they own; a supervisor on all."""
    roles = set(roles)
    if Role.SUPERVISOR in roles:
        return True
    return Role.HANDLER in roles and incident.owner_id == user.id


def visible_to(session: Session, user: User, roles: Iterable[Role]) -> list[Incident]:
    query = select(Incident).order_by(col(Incident.received_at).desc())
    if Role.SUPERVISOR not in set(roles):
        query = query.where(Incident.owner_id == user.id)
    return list(session.exec(query.limit(500)).all())
