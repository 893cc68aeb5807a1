"""The accessibility statement, linked from every page a caller or a guest sees."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from appliance.services.governance import accessibility
from appliance.web import keys
from appliance.web.access import public
from appliance.web.caller_links import use_asked_language

routes = web.RouteTableDef()


@routes.get("/accessibility", name="accessibility")
@public
async def statement(request: web.Request) -> web.StreamResponse:
    """The public-sector model statement, rendered from ``appliance/data/accessibility.toml``.

    Like the privacy notice, an RVR page links ``?look=neutral``: the same statement in
    the page's neutral look, naming the force only where ``rvr_show_force_name`` allows,
    and ``?lang=`` in the caller's language."""
    settings = request.app[keys.SETTINGS]
    request[keys.NEUTRAL_LOOK] = request.query.get("look") == "neutral"
    use_asked_language(request)
    return aiohttp_jinja2.render_template(
        "caller/accessibility.html",
        request,
        {
            "statement": accessibility.statement(),
            "contact": settings.accessibility_contact,
            "page_title": "Accessibility statement",
            "token": "",
        },
    )
