"""What keeps a caller safe on their own phone: the neutral look, the quick exit, no traces.

A domestic abuse caller may be watched. Every caller page of an RVR link (or of a link
we cannot place) carries a quick-exit control (static/js/caller/quick-exit.js) that
replaces the page with a harmless site, so Back does not return, ends the call and
clears what the page stored; this module answers its beacon.
Caller pages and their files are sent ``no-store`` (their files from their own static
route, ASSETS_PREFIX). Pages of an RVR link, or of a link we cannot place, take the
neutral look: the ``rvr_page_title``, no force name unless configured.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appliance.models import Call
from appliance.services.calls import invites, life
from appliance.web import keys
from appliance.web.access import public, source_of
from appliance.web.caller_links import device_hash_of

routes = web.RouteTableDef()


class _NeutralLook:
    """True once the handler has placed the link as RVR (or unplaceable). Read when the
    template renders: context processors run before the handler has opened the link."""

    def __init__(self, request: web.Request) -> None:
        self.request = request

    def __bool__(self) -> bool:
        return bool(self.request.get(keys.NEUTRAL_LOOK, False))


def template_context(request: web.Request) -> dict[str, Any]:
    settings = request.app[keys.SETTINGS]
    return {
        "neutral_look": _NeutralLook(request),
        "rvr_page_title": settings.rvr_page_title,
        "rvr_show_force_name": settings.rvr_show_force_name,
        "quick_exit_url": settings.quick_exit_url,
    }


@routes.post("/v/{token}/exit", name="caller_quick_exit")
@public
async def quick_exit(request: web.Request) -> web.StreamResponse:
    """The quick exit's beacon (sent as the page leaves): end the call or spend the link.

    Always 204, whatever the link's state: the page is already gone."""
    with request.app[keys.DB].session() as session:
        call = invites.open_link(
            session, request.match_info["token"], device_hash_of(request), source_of(request)
        )
        if isinstance(call, Call):
            life.quick_exit(session, request.app[keys.SETTINGS], call, source_of(request))
    if isinstance(call, Call):
        await request.app[keys.HUB].hang_up(call.public_id, life.QUICK_EXIT)
    response = web.Response(status=204)
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response
