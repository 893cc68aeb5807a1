"""The supervisors' evaluation page: the same measures and charts as ``evr report``.

The statistics and charts (numpy, scipy, statsmodels, matplotlib) are imported when a
page is first asked for, in a worker thread: the web process does not load them to
start, and the event loop that carries live calls never waits for them.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from appliance.models import Role, utcnow
from appliance.web import keys
from appliance.web.access import requires

routes = web.RouteTableDef()
DEFAULT_DAYS = 90


@routes.get("/evaluation", name="evaluation")
@requires(Role.SUPERVISOR)
async def evaluation_page(request: web.Request) -> web.StreamResponse:
    today = utcnow().date()
    default = (today - timedelta(days=DEFAULT_DAYS)).isoformat(), today.isoformat()
    first = request.query.get("from") or default[0]
    last = request.query.get("to") or default[1]
    settings, db = request.app[keys.SETTINGS], request.app[keys.DB]

    def work() -> tuple[dict[str, Any], str, int]:
        from appliance.services.evaluation import measures, report

        shown, error, status = (first, last), "", 200
        try:
            start, end = measures.period(*shown)
        except ValueError as exc:
            shown, error, status = default, f"Not shown: {exc}.", 400
            start, end = measures.period(*shown)
        with db.reader() as session:
            gathered = measures.gather(session, start, end)
        evaluation = measures.evaluate(gathered, settings)
        context = report.context(evaluation, report.charts(evaluation))
        return {"start": shown[0], "end": shown[1], **context}, error, status

    context, error, status = await asyncio.to_thread(work)
    return aiohttp_jinja2.render_template(
        "report/page.html", request, {**context, "error": error}, status=status
    )
