"""The signed-in start page and the auditor's view of the audit trail."""

from __future__ import annotations

import asyncio

import aiohttp_jinja2
from aiohttp import web

from appliance.models import AuditEvent, Role
from appliance.services import audit
from appliance.web import keys
from appliance.web.access import requires, signed_in

routes = web.RouteTableDef()

NOTICES = {"password_changed": "Password changed."}


@routes.get("/", name="home")
@signed_in
async def home(request: web.Request) -> web.StreamResponse:
    return aiohttp_jinja2.render_template(
        "home.html", request, {"notice": NOTICES.get(request.query.get("notice", ""), "")}
    )


@routes.get("/audit", name="audit")
@requires(Role.AUDITOR)
async def audit_trail(request: web.Request) -> web.StreamResponse:
    db = request.app[keys.DB]

    check = request.query.get("verify") == "1"

    def read() -> tuple[list[AuditEvent], audit.VerifyResult | None]:
        with db.reader() as session:
            return audit.recent(session, 200), audit.verify(session) if check else None

    events, result = await asyncio.to_thread(read)
    return aiohttp_jinja2.render_template(
        "audit.html", request, {"events": events, "result": result}
    )
