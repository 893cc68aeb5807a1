"""A guest on a live call: the officer invites and removes; the guest's own page and socket.

The guest's link is public like a caller's, bound to the first device that presses Join
on it (a POST, with its own cookie; opening the link binds nothing, so a link previewer
cannot burn it), and dies with the call or when the officer removes the guest.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable

import aiohttp_jinja2
from aiohttp import web

from appliance.i18n import N_
from appliance.live.participants import GUEST, Participant
from appliance.live.protocol import SignallingSocket
from appliance.models import GUEST_ROLES, GuestInvite
from appliance.services.calls import guests
from appliance.services.calls.guests import GuestError, GuestProblem
from appliance.web import keys
from appliance.web.access import current_user, grants, public, require_same_origin, requires
from appliance.web.access import source_of as source
from appliance.web.caller_links import caller_gettext, use_language
from appliance.web.toolkit import STAFF, actor_of, call_for

routes = web.RouteTableDef()
DEVICE_COOKIE = "__Host-evr_guest"

PROBLEMS = {
    GuestProblem.UNKNOWN: (
        404,
        N_("This link does not work"),
        N_("Check you opened the whole link."),
    ),
    GuestProblem.ENDED: (
        410,
        N_("This call has finished"),
        N_("A guest link works for one call only. Ask the officer for a new one if needed."),
    ),
    GuestProblem.REMOVED: (
        410,
        N_("You have left this call"),
        N_("The officer ended your part in it."),
    ),
    GuestProblem.NOT_STARTED: (
        409,
        N_("The call has not started"),
        N_("Open the link again shortly."),
    ),
    GuestProblem.OTHER_DEVICE: (
        409,
        N_("This link is open on another device"),
        N_("A guest link works on one device. Ask the officer for a new link."),
    ),
}
# The guest's page is in the box's default caller language (an interpreter on a Welsh
# call may not read Welsh; a force that wants otherwise changes the default).
GUEST_LABELS = {
    "interpreter": N_("Interpreter"),
    "second_officer": N_("Second officer"),
    "supervisor": N_("Supervisor"),
}


def _guest_language(request: web.Request) -> Callable[[str], str]:
    use_language(request, request.app[keys.SETTINGS].caller_language_default)
    return caller_gettext(request)


def _device_hash(request: web.Request) -> str | None:
    token = request.cookies.get(DEVICE_COOKIE)
    return hashlib.sha256(token.encode()).hexdigest() if token else None


@routes.post("/calls/{public_id}/guests", name="guest_invite")
@requires(*STAFF)
async def invite(request: web.Request) -> web.StreamResponse:
    if not request.app[keys.SETTINGS].guests_enabled:
        return web.json_response({"error": "guests are switched off on this box"}, status=403)
    form = await request.post()
    base = request.app[keys.SETTINGS].effective_public_url
    try:
        with request.app[keys.DB].session() as session:
            call, _ = call_for(request, session)
            guest, token = guests.invite(
                session,
                actor_of(request),
                current_user(request),
                call,
                str(form.get("role", "")),
                str(form.get("name", "")),
                request.app[keys.SETTINGS].guests_max,
            )
            reply = {"id": guest.id, "label": guests.label(guest), "name": guest.name}
    except GuestError as exc:
        return web.json_response({"error": str(exc)}, status=409)
    return web.json_response({**reply, "link": f"{base}/g/{token}", "message": "Link ready."})


@routes.post(r"/calls/{public_id}/guests/{guest_id:\d+}/remove", name="guest_remove")
@requires(*STAFF)
async def remove(request: web.Request) -> web.StreamResponse:
    try:
        with request.app[keys.DB].session() as session:
            call, _ = call_for(request, session)
            guest = guests.remove(
                session,
                actor_of(request),
                current_user(request),
                call,
                int(request.match_info["guest_id"]),
            )
            public_id, leg = call.public_id, guests.leg_id(guest)
    except GuestError as exc:
        return web.json_response({"error": str(exc)}, status=409)
    await request.app[keys.HUB].visitors.remove_guest(public_id, leg)
    return web.json_response({"removed": leg, "message": "The guest has left the call."})


def _open(request: web.Request) -> tuple[GuestInvite, str] | GuestProblem:
    with request.app[keys.DB].session() as session:
        opened = guests.open_link(
            session, request.match_info["token"], _device_hash(request), source(request)
        )
        if isinstance(opened, GuestProblem):
            return opened
        guest, call = opened
        return guest, call.public_id


def _problem_page(request: web.Request, problem: GuestProblem) -> web.Response:
    status, title, text = PROBLEMS[problem]
    _ = _guest_language(request)
    return aiohttp_jinja2.render_template(
        "caller/problem.html",
        request,
        {"title": _(title), "text": _(text), "page_title": "Video call"},
        status=status,
    )


@routes.get("/g/{token}", name="guest_page")
@public
@grants("camera", "microphone")
async def page(request: web.Request) -> web.StreamResponse:
    """Opening the link binds nothing: a link previewer (a chat app, a mail scanner)
    fetches it too. Until a device has pressed Join the page offers Join; after, it is
    the call, on that device only."""
    opened = _open(request)
    if isinstance(opened, GuestProblem):
        return _problem_page(request, opened)
    guest, _call = opened
    _ = _guest_language(request)
    context = {
        "token": request.match_info["token"],
        "label": _(GUEST_LABELS.get(guest.role, GUEST_ROLES.get(guest.role, guest.role))),
        "name": guest.name,
        "page_title": "Video call",
    }
    template = "guest/join.html" if guest.device_hash is None else "guest/call.html"
    return aiohttp_jinja2.render_template(template, request, context)


@routes.post("/g/{token}", name="guest_join")
@public
async def join(request: web.Request) -> web.StreamResponse:
    """The explicit Join: the link is bound to this device (its own cookie) from now on."""
    opened = _open(request)
    if isinstance(opened, GuestProblem):
        return _problem_page(request, opened)
    guest, _ = opened
    device = request.cookies.get(DEVICE_COOKIE) or secrets.token_urlsafe(32)
    with request.app[keys.DB].session() as session:
        bound = session.get(GuestInvite, guest.id)
        assert bound is not None
        guests.bind_device(session, bound, hashlib.sha256(device.encode()).hexdigest())
    response = web.HTTPSeeOther(f"/g/{request.match_info['token']}")
    response.set_cookie(
        DEVICE_COOKIE, device, secure=True, httponly=True, samesite="Strict", path="/"
    )
    raise response


@routes.get("/ws/g/{token}", name="guest_ws")
@public
async def socket(request: web.Request) -> web.StreamResponse:
    require_same_origin(request)
    opened = _open(request)
    if isinstance(opened, GuestProblem):
        raise web.HTTPForbidden(text=f"link refused: {opened.value}")
    guest, public_id = opened
    if guest.device_hash is None:
        raise web.HTTPForbidden(text="link refused: press Join on the link's page first")
    ws = SignallingSocket()
    await ws.prepare(request)
    await request.app[keys.HUB].serve(
        public_id, Participant(GUEST, ws, source(request), guest=guest)
    )
    return ws
