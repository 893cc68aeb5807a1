"""The queue of incidents waiting for a video response, ordered by their target time.

An incident waits until a video call with the caller has connected, unless it was found
ineligible or closed. Its target is its received time plus the target for its category,
else for its grade (grade 3: 48 hours, Dorset's). Past the target it is a breach. Rapid
Video Response incidents (``rvr_categories``) have a target in minutes and sort above all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, func, select

from appliance.config import Settings
from appliance.models import (
    ACTIVE_APPOINTMENT_STATES,
    Appointment,
    Call,
    CallState,
    Incident,
    User,
)
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.intake import incidents
from appliance.services.intake.incidents import IncidentError

RESPONDED = (CallState.CONNECTED.value, CallState.ENDED.value)


@dataclass(frozen=True)
class BoardRow:
    incident: Incident
    target_at: datetime
    owner: str | None
    call_state: str | None
    rvr: bool = False

    def overdue(self, now: datetime) -> bool:
        return now > self.target_at


def target_for(settings: Settings, incident: Incident) -> timedelta:
    if incident.category in settings.rvr_categories:
        return timedelta(minutes=settings.rvr_target_minutes)
    hours = settings.response_target_hours_by_category.get(incident.category)
    if hours is None:
        hours = settings.response_target_hours_by_grade.get(str(incident.grade), 48.0)
    return timedelta(hours=hours)


def _target_at(settings: Settings, incident: Incident) -> datetime:
    """The target; an incident stored before dates were bounded (appliance/dates.py) with a
    ``received_at`` at the calendar's end sorts last instead of breaking the board."""
    try:
        return incident.received_at + target_for(settings, incident)
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)


def waiting(session: Session, settings: Settings, owner_id: int | None = None) -> list[BoardRow]:
    """Incidents waiting for a video response, the most urgent target first."""
    responded = select(Call.incident_id).where(col(Call.state).in_(RESPONDED))
    query = select(Incident).where(
        Incident.status == "open",
        Incident.eligibility != "ineligible",
        col(Incident.id).not_in(responded),
    )
    if owner_id is not None:
        query = query.where(Incident.owner_id == owner_id)
    rows = list(session.exec(query.limit(1000)).all())
    names = _usernames(session, {i.owner_id for i in rows if i.owner_id})
    latest = _latest_call_states(session, [i.id for i in rows if i.id is not None])
    board = [
        BoardRow(
            incident=i,
            target_at=_target_at(settings, i),
            owner=names.get(i.owner_id) if i.owner_id else None,
            call_state=latest.get(i.id or 0),
            rvr=i.category in settings.rvr_categories,
        )
        for i in rows
    ]
    # Rapid Video Response work goes above all other work, then the soonest target.
    return sorted(board, key=lambda row: (not row.rvr, row.target_at))


def count_waiting_callers(
    session: Session, owner_id: int | None, hidden_categories: tuple[str, ...] = ()
) -> int:
    """Callers in a video waiting room on incidents this reader sees: all of them for a
    supervisor (``owner_id`` None), else the reader's own incidents and untaken ones. One
    COUNT, for a home page tile."""
    query = (
        select(func.count())
        .select_from(Call)
        .join(Incident, col(Incident.id) == col(Call.incident_id))
        .where(Call.state == CallState.WAITING.value)
    )
    if owner_id is not None:
        query = query.where((col(Incident.owner_id) == owner_id) | col(Incident.owner_id).is_(None))
    if hidden_categories:
        query = query.where(col(Incident.category).not_in(hidden_categories))
    return int(session.exec(query).one())


def count_rvr_queue(session: Session, settings: Settings) -> int:
    """RVR incidents open and still without a connected call: the RVR queue's length, as
    ``rvr.track.waiting`` lists it, counted by the database."""
    if not settings.rvr_categories:
        return 0
    responded = select(Call.incident_id).where(col(Call.state).in_(RESPONDED))
    query = (
        select(func.count())
        .select_from(Incident)
        .where(
            Incident.status == "open",
            Incident.eligibility != "ineligible",
            col(Incident.category).in_(settings.rvr_categories),
            col(Incident.id).not_in(responded),
        )
    )
    return int(session.exec(query).one())


@dataclass(frozen=True)
class LiveCall:
    call: Call
    incident: Incident
    handler: str | None


def live_calls(session: Session) -> list[LiveCall]:
    rows = session.exec(
        select(Call, Incident)
        .join(Incident, col(Incident.id) == col(Call.incident_id))
        .where(col(Call.state).in_([CallState.WAITING.value, CallState.CONNECTED.value]))
        .order_by(col(Call.created_at))
    ).all()
    names = _usernames(session, {c.handler_id for c, _ in rows if c.handler_id})
    return [LiveCall(c, i, names.get(c.handler_id) if c.handler_id else None) for c, i in rows]


def assign(
    session: Session, settings: Settings, actor: Actor, incident: Incident, handler: User
) -> None:
    """A supervisor gives an incident to a handler (or moves it to another); RVR work
    only to an RVR officer."""
    if handler.disabled:
        raise IncidentError(f"{handler.username} is disabled")
    if not incidents.may_work_rvr(session, settings, handler, incident):
        raise IncidentError(
            f"{handler.username} is not an RVR officer: Rapid Video Response work needs the role"
        )
    if incident.owner_id == handler.id:
        return
    previous = incident.owner_id
    incident.owner_id = handler.id
    session.add(incident)
    audit.record(
        session,
        actor,
        "incident.assigned",
        object_type="incident",
        object_id=incident.cad_reference,
        detail={"to": handler.username, "reassigned": previous is not None},
    )


def _usernames(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    users = session.exec(select(User).where(col(User.id).in_(ids))).all()
    return {u.id: u.username for u in users if u.id is not None}


def _latest_call_states(session: Session, incident_ids: list[int]) -> dict[int, str]:
    if not incident_ids:
        return {}
    states: dict[int, str] = {}
    for call in session.exec(
        select(Call).where(col(Call.incident_id).in_(incident_ids)).order_by(col(Call.id))
    ).all():
        states[call.incident_id] = call.state
    return states


def booked_for(
    session: Session, owner_id: int, now: datetime
) -> list[tuple[Appointment, Incident]]:
    """A handler's appointments still to come (or under way), the soonest first."""
    rows = session.exec(
        select(Appointment, Incident)
        .join(Incident, col(Incident.id) == col(Appointment.incident_id))
        .where(
            Incident.owner_id == owner_id,
            col(Appointment.state).in_([s.value for s in ACTIVE_APPOINTMENT_STATES]),
            col(Appointment.ends_at) > now,
        )
        .order_by(col(Appointment.starts_at))
    ).all()
    return [(appointment, incident) for appointment, incident in rows]
