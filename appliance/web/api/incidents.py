"""The CAD API: JSON over HTTPS, one API key per integration, documented at /api/v1/openapi.json."""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from appliance.models import Incident
from appliance.services.audit import Actor
from appliance.services.intake import incidents
from appliance.services.intake.incidents import Filters, IncidentError
from appliance.web import keys
from appliance.web.access import api_key, public, source_of
from appliance.web.api.schemas import (
    QUERY_PARAMETERS,
    IncidentIn,
    IncidentList,
    IncidentOut,
    openapi_document,
)
from appliance.web.toolkit import api_error

routes = web.RouteTableDef()
MAX_LIMIT = 500


def _actor(request: web.Request) -> Actor:
    return Actor(f"api:{request[keys.API_CLIENT].name}", source_of(request))


@routes.get("/api/v1/openapi.json", name="openapi")
@public
async def openapi(request: web.Request) -> web.StreamResponse:
    return web.json_response(openapi_document(request.app[keys.SETTINGS].effective_public_url))


@routes.post("/api/v1/incidents", name="api_incident_create")
@api_key
async def create_incident(request: web.Request) -> web.StreamResponse:
    if request.content_type != "application/json":
        return api_error(415, "unsupported_media_type", "send the incident as application/json")
    try:
        body = IncidentIn.model_validate_json(await request.read())
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        return api_error(400, "invalid", f"{field or 'body'}: {first['msg']}", field)
    settings = request.app[keys.SETTINGS]
    try:
        with request.app[keys.DB].session() as session:
            incident = incidents.create(
                session,
                _actor(request),
                None,
                source=f"api:{request[keys.API_CLIENT].name}",
                categories=settings.incident_categories,
                **body.model_dump(),
            )
    except IncidentError as exc:
        conflict = "already exists" in str(exc)
        return api_error(409 if conflict else 400, "conflict" if conflict else "invalid", str(exc))
    return web.json_response(IncidentOut.of(incident).model_dump(mode="json"), status=201)


@routes.get("/api/v1/incidents", name="api_incident_list")
@api_key
async def list_incidents(request: web.Request) -> web.StreamResponse:
    unknown = set(request.query) - QUERY_PARAMETERS
    if unknown:
        return api_error(
            400, "invalid", f"unknown query parameter {sorted(unknown)[0]!r}", sorted(unknown)[0]
        )
    try:
        grade = int(request.query["grade"]) if "grade" in request.query else None
        limit = min(int(request.query.get("limit", 100)), MAX_LIMIT)
    except ValueError:
        return api_error(400, "invalid", "grade and limit are whole numbers")
    filters = Filters(
        status=request.query.get("status"),
        grade=grade,
        category=request.query.get("category"),
        text=request.query.get("q"),
        cad_reference=request.query.get("cad_reference"),
    )
    with request.app[keys.DB].session() as session:
        rows = incidents.search(session, filters, limit=max(limit, 1))
    body = IncidentList(incidents=[IncidentOut.of(i) for i in rows])
    return web.json_response(body.model_dump(mode="json"))


@routes.get(r"/api/v1/incidents/{incident_id:\d+}", name="api_incident")
@api_key
async def get_incident(request: web.Request) -> web.StreamResponse:
    with request.app[keys.DB].reader() as session:
        incident = session.get(Incident, int(request.match_info["incident_id"]))
    if incident is None:
        return api_error(404, "not_found", "no incident with that id")
    return web.json_response(IncidentOut.of(incident).model_dump(mode="json"))
