"""Admin → CAD deliveries: what went to the force's CAD, what is waiting, what failed.

A failed event can be sent again by hand (same id and body: the CAD de-duplicates).
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from appliance.models import Role
from appliance.services.outbox import cad
from appliance.web import keys
from appliance.web.access import requires
from appliance.web.toolkit import actor_of

routes = web.RouteTableDef()


@routes.get("/admin/cad", name="admin_cad")
@requires(Role.ADMIN, Role.SUPERVISOR)
async def deliveries(request: web.Request) -> web.StreamResponse:
    settings = request.app[keys.SETTINGS]
    state = request.query.get("state") or None
    with request.app[keys.DB].reader() as session:
        rows = cad.recent(session, state=state)
        counts = cad.counts(session)
    return aiohttp_jinja2.render_template(
        "admin/cad.html",
        request,
        {
            "deliveries": rows,
            "counts": counts,
            "configured": settings.cad_webhook_url is not None,
            "cad_url": settings.cad_webhook_url,
            "notice": "Queued to send again." if request.query.get("notice") == "resent" else "",
        },
    )


@routes.post(r"/admin/cad/{delivery_id:\d+}/resend", name="admin_cad_resend")
@requires(Role.ADMIN)
async def resend(request: web.Request) -> web.StreamResponse:
    with request.app[keys.DB].session() as session:
        delivery = cad.send_again(
            session, actor_of(request), int(request.match_info["delivery_id"])
        )
    if delivery is None:
        raise web.HTTPConflict(text="Only a failed delivery can be sent again.")
    raise web.HTTPSeeOther("/admin/cad?notice=resent")
