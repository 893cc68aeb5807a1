"""The supervisor's queue board and the handler's own list; both refresh themselves."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from appliance.models import Role, utcnow
from appliance.services.audit import Actor
from appliance.services.identity import accounts
from appliance.services.intake import queue
from appliance.services.intake.appointments import london_label
from appliance.services.intake.incidents import IncidentError
from appliance.web import keys
from appliance.web.access import current_user, requires, source_of
from appliance.web.toolkit import incident_for

routes = web.RouteTableDef()


def _handlers(request: web.Request) -> list[str]:
    with request.app[keys.DB].reader() as session:
        return [
            view.user.username
            for view in accounts.list_users(session)
            if Role.HANDLER in view.roles and not view.user.disabled
        ]


def _render(
    request: web.Request,
    template: str,
    fragment_template: str,
    owner_id: int | None,
    error: str = "",
    status: int = 200,
) -> web.Response:
    """The page, or with ``?fragment=1`` only the part that refreshes itself."""
    settings = request.app[keys.SETTINGS]
    with request.app[keys.DB].reader() as session:
        rows = queue.waiting(session, settings, owner_id)
        live = queue.live_calls(session) if owner_id is None else []
        booked = queue.booked_for(session, owner_id, utcnow()) if owner_id is not None else []
    fragment = request.query.get("fragment") == "1"
    return aiohttp_jinja2.render_template(
        fragment_template if fragment else template,
        request,
        {
            "rows": rows,
            "live": live,
            "booked": [(a, i, london_label(a.starts_at)) for a, i in booked],
            "now": utcnow(),
            "wait_target": settings.queue_target_seconds,
            "handlers": _handlers(request) if owner_id is None else [],
            "error": error,
        },
        status=status,
    )


@routes.get("/board", name="board")
@requires(Role.SUPERVISOR)
async def board(request: web.Request) -> web.StreamResponse:
    return _render(request, "calls/board.html", "calls/_board_body.html", None)


@routes.get("/my", name="my_work")
@requires(Role.HANDLER)
async def my_work(request: web.Request) -> web.StreamResponse:
    return _render(request, "calls/my.html", "calls/_my_body.html", current_user(request).id)


@routes.post(r"/incidents/{incident_id:\d+}/assign", name="incident_assign")
@requires(Role.SUPERVISOR)
async def assign(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    refusal = ""
    with request.app[keys.DB].session() as session:
        incident = incident_for(request, session, int(request.match_info["incident_id"]))
        handler = accounts.get_by_username(session, str(form.get("handler", "")))
        if handler is None or Role.HANDLER not in accounts.roles_of(session, handler.id or 0):
            refusal = "choose a handler"
        else:
            try:
                queue.assign(
                    session,
                    request.app[keys.SETTINGS],
                    Actor(current_user(request).username, source_of(request)),
                    incident,
                    handler,
                )
            except IncidentError as exc:
                refusal = str(exc)
    if refusal:
        return _render(
            request,
            "calls/board.html",
            "calls/_board_body.html",
            None,
            f"Not assigned: {refusal}.",
            400,
        )
    raise web.HTTPSeeOther("/board")
