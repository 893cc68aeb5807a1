"""The supervisors' evaluation page: the same measures and charts as ``evr report``."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import aiohttp_jinja2
from aiohttp import web

from appliance.models import Role, utcnow
from appliance.services import measures, report
from appliance.web import keys
from appliance.web.access import requires

routes = web.RouteTableDef()
DEFAULT_DAYS = 90


@routes.get("/evaluation", name="evaluation")
@requires(Role.SUPERVISOR)
async def evaluation_page(request: web.Request) -> web.StreamResponse:
    today = utcnow().date()
    first = request.query.get("from") or (today - timedelta(days=DEFAULT_DAYS)).isoformat()
    last = request.query.get("to") or today.isoformat()
    error, status = "", 200
    try:
        start, end = measures.period(first, last)
    except ValueError as exc:
        error, status = f"Not shown: {exc}.", 400
        first, last = (today - timedelta(days=DEFAULT_DAYS)).isoformat(), today.isoformat()
        start, end = measures.period(first, last)
    settings, db = request.app[keys.SETTINGS], request.app[keys.DB]

    def work() -> tuple[measures.Evaluation, report.Charts]:
        # Seconds of CPU for a busy quarter: off the event loop, which carries live calls.
        with db.session() as session:
            evaluation = measures.evaluate(session, settings, start, end)
        return evaluation, report.charts(evaluation)

    evaluation, charts = await asyncio.to_thread(work)
    return aiohttp_jinja2.render_template(
        "report/page.html",
        request,
        {"start": first, "end": last, "error": error, **report.context(evaluation, charts)},
        status=status,
    )
