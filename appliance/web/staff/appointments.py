"""Booked video appointments on an incident: book, move, cancel (handlers, supervisors)."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from aiohttp.web_request import FileField
from multidict import MultiDictProxy
from sqlmodel import Session

from appliance import dates
from appliance.models import Appointment
from appliance.services.calls.states import CallError
from appliance.services.intake import appointments
from appliance.services.intake.appointments import AppointmentError
from appliance.services.outbox.messages import MessageError
from appliance.web import keys
from appliance.web.access import current_user, requires
from appliance.web.toolkit import STAFF, actor_of, incident_for, render_incident

routes = web.RouteTableDef()
REFUSALS = (AppointmentError, CallError, MessageError)


def _starts_at(form: MultiDictProxy[str | bytes | bytearray | FileField]) -> datetime:
    value = str(form.get("starts_at", ""))
    try:
        starts_at = datetime.fromisoformat(value)
    except ValueError:
        raise AppointmentError("choose a slot from the list") from None
    if starts_at.tzinfo is None:
        raise AppointmentError("choose a slot from the list")
    try:
        return dates.within("starts_at", starts_at)
    except dates.DateOutOfRange:
        raise AppointmentError("choose a slot from the list") from None


def _appointment(request: web.Request, session: Session, incident_id: int) -> Appointment:
    appointment = session.get(Appointment, int(request.match_info["appointment_id"]))
    if appointment is None or appointment.incident_id != incident_id:
        raise web.HTTPNotFound(text="There is no such appointment on this incident.")
    return appointment


async def _act(request: web.Request, verb: str) -> web.StreamResponse:
    incident_id = int(request.match_info["incident_id"])
    settings = request.app[keys.SETTINGS]
    form = await request.post()
    safe = form.get("safe_to_contact") == "yes"
    try:
        with request.app[keys.DB].session() as session:
            incident = incident_for(request, session, incident_id)
            user, actor = current_user(request), actor_of(request)
            if verb == "book":
                appointments.book(session, actor, settings, incident, user, _starts_at(form), safe)
            elif verb == "move":
                appointment = _appointment(request, session, incident_id)
                appointments.move(
                    session, actor, settings, appointment, user, _starts_at(form), safe
                )
            else:
                appointment = _appointment(request, session, incident_id)
                appointments.cancel(session, actor, settings, appointment, safe)
    except REFUSALS as exc:
        # Nothing was written: every check runs before the first row. Rendered after
        # the session has closed (one session per thread).
        title = {"book": "Not booked", "move": "Not moved", "cancel": "Not cancelled"}[verb]
        return render_incident(request, incident_id, error=f"{title}: {exc}.", status=409)
    raise web.HTTPSeeOther(f"/incidents/{incident_id}?notice=appointment_{verb}")


@routes.post(r"/incidents/{incident_id:\d+}/appointments", name="appointment_book")
@requires(*STAFF)
async def book(request: web.Request) -> web.StreamResponse:
    return await _act(request, "book")


@routes.post(
    r"/incidents/{incident_id:\d+}/appointments/{appointment_id:\d+}/move",
    name="appointment_move",
)
@requires(*STAFF)
async def move(request: web.Request) -> web.StreamResponse:
    return await _act(request, "move")


@routes.post(
    r"/incidents/{incident_id:\d+}/appointments/{appointment_id:\d+}/cancel",
    name="appointment_cancel",
)
@requires(*STAFF)
async def cancel(request: web.Request) -> web.StreamResponse:
    return await _act(request, "cancel")
