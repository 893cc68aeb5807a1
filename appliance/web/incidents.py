"""Incidents for handlers: list, create, one incident with its calls and video invites."""

from __future__ import annotations

from datetime import timedelta

import aiohttp_jinja2
from aiohttp import web
from sqlmodel import Session

from appliance.models import Incident, Role
from appliance.services import calls, incidents
from appliance.services.audit import Actor
from appliance.services.incidents import IncidentError
from appliance.web import keys
from appliance.web.access import current_roles, current_user, requires, source_of

routes = web.RouteTableDef()
STAFF = (Role.HANDLER, Role.SUPERVISOR)


def _actor(request: web.Request) -> Actor:
    return Actor(current_user(request).username, source_of(request))


def incident_for(request: web.Request, session: Session, incident_id: int) -> Incident:
    """The incident, if this user may act on it (else 404 or 403)."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise web.HTTPNotFound(text="There is no incident with that reference.")
    if not incidents.may_act(current_user(request), current_roles(request), incident):
        raise web.HTTPForbidden(text="This incident is not yours to act on.")
    return incident


def _render_list(
    request: web.Request, error: str = "", form: dict | None = None, status: int = 200
) -> web.Response:
    with request.app[keys.DB].session() as session:
        rows = incidents.visible_to(session, current_user(request), current_roles(request))
    return aiohttp_jinja2.render_template(
        "incidents/list.html",
        request,
        {
            "incidents": rows,
            "categories": request.app[keys.SETTINGS].incident_categories,
            "error": error,
            "form": form or {},
        },
        status=status,
    )


@routes.get("/incidents", name="incidents")
@requires(*STAFF)
async def incident_list(request: web.Request) -> web.StreamResponse:
    return _render_list(request)


@routes.post("/incidents", name="incidents_create")
@requires(*STAFF)
async def incident_create(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    fields = {
        k: str(form.get(k, ""))
        for k in (
            "cad_reference",
            "grade",
            "category",
            "caller_name",
            "caller_phone",
            "summary",
            "location_text",
        )
    }
    try:
        grade = int(fields["grade"] or 3)
        with request.app[keys.DB].session() as session:
            incident = incidents.create(
                session,
                _actor(request),
                current_user(request),
                cad_reference=fields["cad_reference"],
                grade=grade,
                category=fields["category"],
                caller_name=fields["caller_name"],
                caller_phone=fields["caller_phone"],
                summary=fields["summary"],
                location_text=fields["location_text"],
            )
    except (IncidentError, ValueError) as exc:
        return _render_list(request, f"Not created: {exc}.", fields, status=400)
    raise web.HTTPSeeOther(f"/incidents/{incident.id}")


def _render_incident(
    request: web.Request, incident_id: int, link: str = "", status: int = 200
) -> web.Response:
    with request.app[keys.DB].session() as session:
        incident = incident_for(request, session, incident_id)
        incident_calls = calls.for_incident(session, incident.id or 0)
    return aiohttp_jinja2.render_template(
        "incidents/show.html",
        request,
        {"incident": incident, "calls": incident_calls, "link": link},
        status=status,
    )


@routes.get(r"/incidents/{incident_id:\d+}", name="incident")
@requires(*STAFF)
async def incident_page(request: web.Request) -> web.StreamResponse:
    return _render_incident(request, int(request.match_info["incident_id"]))


@routes.post(r"/incidents/{incident_id:\d+}/invites", name="incident_invite")
@requires(*STAFF)
async def invite(request: web.Request) -> web.StreamResponse:
    incident_id = int(request.match_info["incident_id"])
    settings = request.app[keys.SETTINGS]
    with request.app[keys.DB].session() as session:
        incident = incident_for(request, session, incident_id)
        _, _, token = calls.create_video_invite(
            session,
            _actor(request),
            incident,
            current_user(request),
            timedelta(hours=settings.invite_ttl_hours),
        )
    return _render_incident(request, incident_id, link=f"{settings.effective_public_url}/v/{token}")


@routes.post("/calls/{public_id}/revoke", name="call_revoke")
@requires(*STAFF)
async def revoke(request: web.Request) -> web.StreamResponse:
    with request.app[keys.DB].session() as session:
        call = calls.by_public_id(session, request.match_info["public_id"])
        if call is None:
            raise web.HTTPNotFound()
        incident_for(request, session, call.incident_id)
        calls.revoke(session, _actor(request), call)
    await request.app[keys.HUB].end_call(call.public_id, _actor(request), "revoked")
    raise web.HTTPSeeOther(f"/incidents/{call.incident_id}")
