"""The live view for responders: the handler makes and revokes view-only links; the
viewer's own page and socket.

The link (``/w/{call}/{token}``) is public: it is the credential, and a force phone
opens it without signing in. Like a guest's it binds to the first device that presses
Watch (a POST, with its own cookie; opening the link binds nothing, so a link previewer
cannot burn it), and dies with the call or when the officer revokes it. The socket
refuses a link that does not open by accepting and closing at once with 4007 and the
reason (or 4006 when revoked), so the page can say why instead of retrying.
"""

from __future__ import annotations

import hashlib
import secrets

import aiohttp_jinja2
from aiohttp import web

from appliance.live import viewers as live_viewers
from appliance.live.participants import VIEWER
from appliance.live.protocol import SignallingSocket
from appliance.live.viewers import Viewer
from appliance.models import ViewerLink
from appliance.services.calls import viewers
from appliance.services.calls.viewers import ViewerError, ViewerProblem
from appliance.web import keys
from appliance.web.access import current_user, public, require_same_origin, requires
from appliance.web.access import source_of as source
from appliance.web.toolkit import STAFF, actor_of, call_for

routes = web.RouteTableDef()
DEVICE_COOKIE = "__Host-evr_viewer"

PROBLEMS = {
    ViewerProblem.UNKNOWN: (404, "This link does not work", "Check you opened the whole link."),
    ViewerProblem.OTHER_CALL: (404, "This link does not work", "Check you opened the whole link."),
    ViewerProblem.ENDED: (
        410,
        "This call has finished",
        "A viewing link works for one call only. Ask the call handler for a new one if needed.",
    ),
    ViewerProblem.REVOKED: (
        410,
        "This link was revoked",
        "The call handler has stopped this link. Ask them for a new one if you still need it.",
    ),
    ViewerProblem.NOT_STARTED: (409, "The call has not started", "Open the link again shortly."),
    ViewerProblem.OTHER_DEVICE: (
        409,
        "This link is open on another device",
        "A viewing link works on one device. Ask the call handler for a new link.",
    ),
}


def _device_hash(request: web.Request) -> str | None:
    token = request.cookies.get(DEVICE_COOKIE)
    return hashlib.sha256(token.encode()).hexdigest() if token else None


def _link_path(public_id: str, token: str) -> str:
    return f"/w/{public_id}/{token}"


@routes.post("/calls/{public_id}/viewers", name="viewer_make")
@requires(*STAFF)
async def make(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    base = request.app[keys.SETTINGS].effective_public_url
    try:
        with request.app[keys.DB].session() as session:
            call, _ = call_for(request, session)
            link, token = viewers.make(
                session, actor_of(request), current_user(request), call, str(form.get("name", ""))
            )
            reply = {"id": link.id, "name": link.name, "leg": viewers.leg_id(link)}
            path = _link_path(call.public_id, token)
    except ViewerError as exc:
        return web.json_response({"error": str(exc)}, status=409)
    return web.json_response({**reply, "link": base + path, "message": "Viewing link ready."})


@routes.post(r"/calls/{public_id}/viewers/{viewer_id:\d+}/revoke", name="viewer_revoke")
@requires(*STAFF)
async def revoke(request: web.Request) -> web.StreamResponse:
    try:
        with request.app[keys.DB].session() as session:
            call, _ = call_for(request, session)
            link = viewers.revoke(
                session,
                actor_of(request),
                current_user(request),
                call,
                int(request.match_info["viewer_id"]),
            )
            public_id, leg = call.public_id, viewers.leg_id(link)
    except ViewerError as exc:
        return web.json_response({"error": str(exc)}, status=409)
    await request.app[keys.HUB].visitors.remove_viewer(public_id, leg)
    return web.json_response({"revoked": leg, "message": "The viewing link no longer works."})


def _open(request: web.Request) -> ViewerLink | ViewerProblem:
    with request.app[keys.DB].session() as session:
        opened = viewers.open_link(
            session,
            request.match_info["public_id"],
            request.match_info["token"],
            _device_hash(request),
            source(request),
        )
        return opened if isinstance(opened, ViewerProblem) else opened[0]


def _problem_page(request: web.Request, problem: ViewerProblem) -> web.Response:
    status, title, text = PROBLEMS[problem]
    return aiohttp_jinja2.render_template(
        "viewer/problem.html",
        request,
        {"title": title, "text": text, "page_title": "Live view"},
        status=status,
    )


@routes.get("/w/{public_id}/{token}", name="viewer_page")
@public
async def page(request: web.Request) -> web.StreamResponse:
    """Opening the link binds nothing; until a device has pressed Watch the page offers
    Watch, after that it is the live view, on that device only."""
    opened = _open(request)
    if isinstance(opened, ViewerProblem):
        return _problem_page(request, opened)
    context = {
        "path": _link_path(request.match_info["public_id"], request.match_info["token"]),
        "name": opened.name,
        "page_title": "Live view",
    }
    template = "viewer/watch.html" if opened.device_hash is None else "viewer/live.html"
    return aiohttp_jinja2.render_template(template, request, context)


@routes.post("/w/{public_id}/{token}", name="viewer_bind")
@public
async def bind(request: web.Request) -> web.StreamResponse:
    """The explicit Watch: the link is bound to this device (its own cookie) from now on."""
    opened = _open(request)
    if isinstance(opened, ViewerProblem):
        return _problem_page(request, opened)
    device = request.cookies.get(DEVICE_COOKIE) or secrets.token_urlsafe(32)
    with request.app[keys.DB].session() as session:
        bound = session.get(ViewerLink, opened.id)
        assert bound is not None
        viewers.bind_device(session, bound, hashlib.sha256(device.encode()).hexdigest())
    response = web.HTTPSeeOther(
        _link_path(request.match_info["public_id"], request.match_info["token"])
    )
    response.set_cookie(
        DEVICE_COOKIE, device, secure=True, httponly=True, samesite="Strict", path="/"
    )
    raise response


@routes.get("/ws/w/{public_id}/{token}", name="viewer_ws")
@public
async def socket(request: web.Request) -> web.StreamResponse:
    require_same_origin(request)
    refusal: tuple[int, str] | None = None
    with request.app[keys.DB].session() as session:
        opened = viewers.open_link(
            session,
            request.match_info["public_id"],
            request.match_info["token"],
            _device_hash(request),
            source(request),
        )
        if isinstance(opened, ViewerProblem):
            revoked = opened is ViewerProblem.REVOKED
            code = live_viewers.REVOKED if revoked else live_viewers.REFUSED
            refusal = code, live_viewers.REFUSALS[opened]
        elif opened[0].device_hash is None:
            refusal = live_viewers.REFUSED, "press Watch on the link's page first"
        else:
            link, call = opened
            viewers.opened(session, link, call, source(request))
            public_id = call.public_id
    ws = SignallingSocket()
    await ws.prepare(request)
    if refusal is not None:
        await ws.close(code=refusal[0], message=refusal[1].encode())
        return ws
    await request.app[keys.HUB].serve(public_id, Viewer(VIEWER, ws, source(request), link=link))
    return ws
