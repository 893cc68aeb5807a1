"""Incidents, and who may act on one. (The CAD API and eligibility come with the intake work.)"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, func, select
from sqlmodel.sql.expression import SelectOfScalar

from appliance import dates
from appliance.config import Settings
from appliance.models import AuditEvent, Call, Incident, Role, User, UserRole, utcnow
from appliance.services import audit
from appliance.services.audit import Actor

CAD_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_-]{1,63}$")
# E.164, or a UK number written as people write it (07700 900123, +44 7700 900123).
PHONE_CLEAN_RE = re.compile(r"[\s()-]")


class IncidentError(ValueError):
    """The message is for the handler."""


def normalise_phone(raw: str) -> str:
    """A UK mobile or landline, or any E.164 number, as E.164 (+447700900123).

    The "(0)" people write after a country code (+44 (0)7700 900123) is the trunk prefix
    dialled only inside the country, so it is dropped, not kept as a digit.
    """
    written = raw.strip()
    if written.startswith(("+", "00")):
        written = written.replace("(0)", "", 1)
    number = PHONE_CLEAN_RE.sub("", written)
    if number.startswith("00"):
        number = "+" + number[2:]
    elif number.startswith("0"):
        number = "+44" + number[1:]
    if not re.fullmatch(r"\+[1-9]\d{7,14}", number):
        raise IncidentError("the phone number is not a valid UK or international number")
    if number.startswith("+44") and len(number) != 13:
        raise IncidentError("a UK number has 11 digits starting with 0 (or +44 and 10 digits)")
    return number


def national_format(e164: str) -> str:
    """A stored UK number as staff dial and read it (07700 900123, 020 7946 0000).

    Ofcom's groupings: 02x numbers 3-4-4; 011x, 01x1, 03, 08 and 09 numbers 4-3-4; other
    geographic numbers and mobiles 5-6. A number from elsewhere stays in E.164.
    """
    if not (e164.startswith("+44") and len(e164) == 13):
        return e164
    national = "0" + e164[3:]
    if national.startswith("02"):
        return f"{national[:3]} {national[3:7]} {national[7:]}"
    if national.startswith(("03", "08", "09", "011")) or national[3] == "1":
        return f"{national[:4]} {national[4:7]} {national[7:]}"
    return f"{national[:5]} {national[5:]}"


def create(
    session: Session,
    actor: Actor,
    created_by: User | None,
    *,
    cad_reference: str,
    grade: int,
    category: str,
    caller_name: str,
    caller_phone: str,
    summary: str = "",
    location_text: str = "",
    received_at: datetime | None = None,
    source: str = "ui",
    categories: list[str] | None = None,
    keep: bool = True,
) -> Incident:
    """A new incident. Made by a handler it is theirs (unless ``keep`` is False: RVR work
    made by someone without the RVR role waits on the RVR queue); from CAD (no user) it
    waits unowned."""
    cad_reference = cad_reference.strip()
    if not CAD_RE.match(cad_reference):
        raise IncidentError("a CAD reference is 2–64 letters, digits, '/', '_' or '-'")
    if grade not in (1, 2, 3, 4):
        raise IncidentError("the grade is 1, 2, 3 or 4")
    if not category.strip():
        raise IncidentError("choose a category")
    if categories is not None and category.strip() not in categories:
        raise IncidentError(
            f"unknown category {category.strip()!r}: one of " + ", ".join(categories)
        )
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
        created_by_id=created_by.id if created_by else None,
        owner_id=created_by.id if created_by and keep else None,
        source=source[:64],
    )
    if received_at:
        try:
            incident.received_at = dates.not_after_now("received_at", received_at)
        except dates.DateOutOfRange as exc:
            raise IncidentError(str(exc)) from None
    session.add(incident)
    session.flush()
    audit.record(
        session,
        actor,
        "incident.created",
        object_type="incident",
        object_id=incident.cad_reference,
        detail={"grade": grade, "source": source},
    )
    return incident


def may_act(user: User, roles: Iterable[Role], incident: Incident) -> bool:
    """A handler acts on the incidents they own; a supervisor on all."""
    roles = set(roles)
    if Role.SUPERVISOR in roles:
        return True
    return Role.HANDLER in roles and incident.owner_id == user.id


def may_see(user: User, roles: Iterable[Role], incident: Incident) -> bool:
    """A handler also sees incidents nobody has taken yet (from CAD), to take one."""
    roles = set(roles)
    return may_act(user, roles, incident) or (Role.HANDLER in roles and incident.owner_id is None)


@dataclass(frozen=True)
class Filters:
    status: str | None = None
    grade: int | None = None
    category: str | None = None
    text: str | None = None
    unowned: bool = False
    cad_reference: str | None = None
    # Categories this reader may not see in a list (RVR work for a plain handler): left
    # out by the query itself, so a page of the list is a full page.
    hidden_categories: tuple[str, ...] = ()


def _matching(
    filters: Filters, user: User | None, roles: Iterable[Role]
) -> SelectOfScalar[Incident]:
    """The WHERE clauses of a search, as a SELECT of incidents not yet ordered."""
    query = select(Incident)
    if user is not None and Role.SUPERVISOR not in set(roles):
        query = query.where((col(Incident.owner_id) == user.id) | col(Incident.owner_id).is_(None))
    if filters.status:
        query = query.where(Incident.status == filters.status)
    if filters.grade:
        query = query.where(Incident.grade == filters.grade)
    if filters.category:
        query = query.where(Incident.category == filters.category)
    if filters.cad_reference:
        query = query.where(Incident.cad_reference == filters.cad_reference)
    if filters.unowned:
        query = query.where(col(Incident.owner_id).is_(None))
    if filters.hidden_categories:
        query = query.where(col(Incident.category).not_in(filters.hidden_categories))
    if filters.text:
        pattern = f"%{filters.text.strip()[:64]}%"
        query = query.where(
            col(Incident.cad_reference).ilike(pattern)
            | col(Incident.summary).ilike(pattern)
            | col(Incident.location_text).ilike(pattern)
        )
    # Newest first; the id breaks ties so a page never shows a row twice or skips one.
    return query.order_by(col(Incident.received_at).desc(), col(Incident.id).desc())


def search(
    session: Session,
    filters: Filters,
    user: User | None = None,
    roles: Iterable[Role] = (),
    limit: int = 500,
) -> list[Incident]:
    """Incidents newest first, filtered; with a user, only what that user may see."""
    return list(session.exec(_matching(filters, user, roles).limit(limit)).all())


@dataclass(frozen=True)
class Page:
    """One page of a search, and where it sits among the rest."""

    rows: list[Incident]
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


def page_of(
    session: Session,
    filters: Filters,
    user: User | None,
    roles: Iterable[Role],
    number: int,
    size: int = 50,
) -> Page:
    """Page ``number`` (from 1) of a search, counted by the database and fetched with
    LIMIT/OFFSET in a stable order, so the list never loads hundreds of rows at once.
    A number past the end gives the last page."""
    query = _matching(filters, user, roles)
    total = session.exec(select(func.count()).select_from(query.order_by(None).subquery())).one()
    last = max(1, -(-total // size))
    number = min(max(1, number), last)
    rows = list(session.exec(query.limit(size).offset((number - 1) * size)).all())
    return Page(rows, number, size, total)


def count_open(session: Session, owner_id: int | None) -> int:
    """Open incidents owned by ``owner_id`` (None: open incidents nobody has taken)."""
    owner = col(Incident.owner_id).is_(None) if owner_id is None else Incident.owner_id == owner_id
    query = select(func.count()).select_from(Incident).where(Incident.status == "open", owner)
    return int(session.exec(query).one())


def visible_to(session: Session, user: User, roles: Iterable[Role]) -> list[Incident]:
    return search(session, Filters(), user, roles)


def may_work_rvr(session: Session, settings: Settings, user: User, incident: Incident) -> bool:
    """Rapid Video Response work (domestic abuse) is for RVR officers and supervisors only;
    any other incident for anyone."""
    if incident.category not in settings.rvr_categories:
        return True
    held = set(session.exec(select(UserRole.role).where(UserRole.user_id == user.id)).all())
    return bool(held & {Role.RVR_OFFICER.value, Role.SUPERVISOR.value})


def take(
    session: Session, settings: Settings, actor: Actor, user: User, incident: Incident
) -> None:
    """A handler takes an incident nobody owns (one from CAD); RVR work, an RVR officer."""
    if not may_work_rvr(session, settings, user, incident):
        raise IncidentError("this is Rapid Video Response work: it needs the RVR officer role")
    if incident.owner_id is not None and incident.owner_id != user.id:
        raise IncidentError("another handler has this incident; a supervisor can re-assign it")
    if incident.owner_id == user.id:
        return
    incident.owner_id = user.id
    session.add(incident)
    audit.record(
        session,
        actor,
        "incident.assigned",
        object_type="incident",
        object_id=incident.cad_reference,
        detail={"to": user.username},
    )


def record_eligibility(
    session: Session,
    actor: Actor,
    user: User,
    incident: Incident,
    questions: list[str],
    answers: list[bool | None],
    reason: str = "",
    *,
    settings: Settings,
) -> bool:
    """The checklist's answers: eligible only when every answer is yes.

    An ineligible incident records why (the handler's reason, else the questions
    answered no) and leaves the video path: no invite can be made for it. Refused on
    the Rapid Video Response track, whose safety questions alone decide (a "yes" here
    would undo their "no").
    """
    if incident.category in settings.rvr_categories:
        raise IncidentError(
            "this is Rapid Video Response work: its safety questions decide, on its RVR page"
        )
    return set_eligibility(session, actor, user, incident, questions, answers, reason)


def set_eligibility(
    session: Session,
    actor: Actor,
    user: User,
    incident: Incident,
    questions: list[str],
    answers: list[bool | None],
    reason: str = "",
) -> bool:
    """Record a checklist's answers, whichever checklist it was (the ordinary one, or
    RVR's safety questions through ``rvr.track``, which alone may call this for RVR)."""
    if len(answers) != len(questions) or any(a is None for a in answers):
        raise IncidentError("answer every question of the checklist")
    eligible = all(answers)
    failed = [q for q, a in zip(questions, answers, strict=True) if not a]
    incident.eligibility = "eligible" if eligible else "ineligible"
    incident.eligibility_answers = {q: bool(a) for q, a in zip(questions, answers, strict=True)}
    incident.eligibility_reason = "" if eligible else (reason.strip() or "; ".join(failed))[:500]
    incident.eligibility_by_id = user.id
    incident.eligibility_at = utcnow()
    session.add(incident)
    audit.record(
        session,
        actor,
        "incident.eligibility",
        object_type="incident",
        object_id=incident.cad_reference,
        detail={"eligible": eligible, "failed": len(failed)},
    )
    return eligible


def timeline(session: Session, incident: Incident) -> list[AuditEvent]:
    """Everything that happened to the incident and its calls, oldest first."""
    call_ids = [
        c for c in session.exec(select(Call.public_id).where(Call.incident_id == incident.id))
    ]
    about_incident = (col(AuditEvent.object_type) == "incident") & (
        col(AuditEvent.object_id) == incident.cad_reference
    )
    about_calls = (col(AuditEvent.object_type) == "call") & col(AuditEvent.object_id).in_(call_ids)
    query = select(AuditEvent).where(about_incident | about_calls if call_ids else about_incident)
    return list(session.exec(query.order_by(col(AuditEvent.seq))).all())


def record_first_screen(session: Session, incident: Incident) -> bool:
    """The caller's link showed its first page: how long after the incident was made
    (RVR's measure: minutes, not hours). Only the first time counts (True then)."""
    if incident.caller_first_screen_at is not None:
        return False
    now = utcnow()
    incident.caller_first_screen_at = now
    incident.caller_first_screen_seconds = round((now - incident.created_at).total_seconds(), 3)
    session.add(incident)
    audit.record(
        session,
        Actor("caller"),
        "incident.first_screen",
        object_type="incident",
        object_id=incident.cad_reference,
        detail={"seconds": incident.caller_first_screen_seconds},
    )
    return True
