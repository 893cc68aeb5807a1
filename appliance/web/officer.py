"""The officer's record of an incident: THRIVE, notes and safeguarding, outcome, closing.

Each form works as a plain POST that comes back to the incident page; from the call
console the same forms are sent by fetch (``X-Requested-With: fetch``) and answered with
JSON, so the live call is never left.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy
from sqlmodel import Session

from appliance.models import THRIVE_PARTS, Incident
from appliance.services import officer
from appliance.services.audit import Actor
from appliance.services.incidents import IncidentError
from appliance.services.statements import StatementConflict, StatementError
from appliance.web import keys
from appliance.web.access import current_user, requires, source_of
from appliance.web.incidents import STAFF, incident_for
from appliance.web.incidents import _render_incident as render_incident

routes = web.RouteTableDef()
Work = Callable[[Session, Incident, MultiDictProxy[Any]], dict[str, Any]]


async def act(request: web.Request, work: Work) -> web.StreamResponse:
    """Run one change in its own transaction; a refusal changes nothing (400, or 409 when
    the state forbids it, e.g. a signed statement)."""
    incident_id = int(request.match_info["incident_id"])
    form = await request.post()
    error, status, result = "", 400, {}
    try:
        with request.app[keys.DB].session() as session:
            incident = incident_for(request, session, incident_id)
            result = work(session, incident, form)
    except (IncidentError, StatementError) as exc:
        error = str(exc)
        status = 409 if isinstance(exc, StatementConflict) else 400
    else:
        request.app[keys.CAD].poke()  # an outcome or a closing may have queued a CAD event
    if request.headers.get("X-Requested-With") == "fetch":
        if error:
            return web.json_response({"error": error}, status=status)
        return web.json_response({"ok": True, **result})
    if error:
        return render_incident(request, incident_id, error=f"Not saved: {error}.", status=status)
    raise web.HTTPSeeOther(f"/incidents/{incident_id}")


def actor_of(request: web.Request) -> Actor:
    return Actor(current_user(request).username, source_of(request))


@routes.post(r"/incidents/{incident_id:\d+}/thrive", name="incident_thrive")
@requires(*STAFF)
async def thrive(request: web.Request) -> web.StreamResponse:
    def work(session: Session, incident: Incident, form: MultiDictProxy[Any]) -> dict[str, Any]:
        assessment = officer.record_thrive(
            session,
            actor_of(request),
            current_user(request),
            incident,
            {part: str(form.get(part, "")) for part in THRIVE_PARTS},
            {part: str(form.get(f"{part}_note", "")) for part in THRIVE_PARTS},
        )
        return {"message": f"THRIVE saved as version {assessment.version}."}

    return await act(request, work)


@routes.post(r"/incidents/{incident_id:\d+}/notes", name="incident_note")
@requires(*STAFF)
async def note(request: web.Request) -> web.StreamResponse:
    def work(session: Session, incident: Incident, form: MultiDictProxy[Any]) -> dict[str, Any]:
        added = officer.add_note(
            session,
            actor_of(request),
            current_user(request),
            incident,
            str(form.get("text", "")),
            str(form.get("kind", "note")),
            str(form.get("referred_to", "")),
        )
        return {"message": f"{added.kind.capitalize()} recorded at {added.at:%H:%M:%S} UTC."}

    return await act(request, work)


@routes.post(r"/incidents/{incident_id:\d+}/outcome", name="incident_outcome")
@requires(*STAFF)
async def outcome(request: web.Request) -> web.StreamResponse:
    def work(session: Session, incident: Incident, form: MultiDictProxy[Any]) -> dict[str, Any]:
        answer = str(form.get("deployment_needed", ""))
        officer.set_outcome(
            session,
            actor_of(request),
            current_user(request),
            incident,
            request.app[keys.SETTINGS],
            str(form.get("code", "")),
            {"yes": True, "no": False}.get(answer),
        )
        if form.get("close") == "yes":
            officer.close(session, actor_of(request), incident, request.app[keys.SETTINGS])
        return {"message": "Outcome saved."}

    return await act(request, work)


@routes.post(r"/incidents/{incident_id:\d+}/close", name="incident_close")
@requires(*STAFF)
async def close(request: web.Request) -> web.StreamResponse:
    def work(session: Session, incident: Incident, form: MultiDictProxy[Any]) -> dict[str, Any]:
        officer.close(session, actor_of(request), incident, request.app[keys.SETTINGS])
        return {"message": "Incident closed."}

    return await act(request, work)
