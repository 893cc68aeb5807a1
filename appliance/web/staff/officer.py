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
from appliance.services.audit import Actor
from appliance.services.record import drafts, officer
from appliance.web import keys
from appliance.web.access import current_user, requires, source_of
from appliance.web.toolkit import STAFF, act_on_form

routes = web.RouteTableDef()
Work = Callable[[Session, Incident, MultiDictProxy[Any]], dict[str, Any]]


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
        drafts.discard(session, current_user(request), incident.id or 0, "thrive")
        return {"message": f"THRIVE saved as version {assessment.version}."}

    return await act_on_form(request, work)


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
        drafts.discard(session, current_user(request), incident.id or 0, "note")
        return {"message": f"{added.kind.capitalize()} recorded at {added.at:%H:%M:%S} UTC."}

    return await act_on_form(request, work)


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

    return await act_on_form(request, work)


@routes.post(r"/incidents/{incident_id:\d+}/close", name="incident_close")
@requires(*STAFF)
async def close(request: web.Request) -> web.StreamResponse:
    def work(session: Session, incident: Incident, form: MultiDictProxy[Any]) -> dict[str, Any]:
        officer.close(session, actor_of(request), incident, request.app[keys.SETTINGS])
        return {"message": "Incident closed."}

    return await act_on_form(request, work)
