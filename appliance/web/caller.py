"""The caller's pages, reached only by the personal link in their SMS.

Mobile first, a neutral title, nothing cached. A bad link (unknown, expired,
revoked, finished, in use on another phone) gets a plain page and opens no media.
"""

from __future__ import annotations

import hashlib
import secrets

import aiohttp_jinja2
from aiohttp import web
from sqlmodel import Session

from appliance.live.hub import CALLER, Participant
from appliance.models import Call
from appliance.services import calls
from appliance.services.appointments import london_label
from appliance.services.calls import Consent, LinkProblem
from appliance.web import keys
from appliance.web.access import grants, public, require_same_origin, source_of

routes = web.RouteTableDef()

PROBLEMS = {
    LinkProblem.UNKNOWN: (
        404,
        "This link does not work",
        "Check that you opened the whole link from the message.",
    ),
    LinkProblem.EXPIRED: (
        410,
        "This link has expired",
        "Links only work for a short time. Call us again if you still need help.",
    ),
    LinkProblem.REVOKED: (
        410,
        "This link is no longer in use",
        "The officer cancelled this video call. They may send you a new link.",
    ),
    LinkProblem.FINISHED: (
        410,
        "This video call has finished",
        "Thank you. If you need us again, please call.",
    ),
    LinkProblem.OTHER_DEVICE: (
        409,
        "This link is open on another phone",
        "A video call can only use one phone at a time. Use the phone "
        "you started on, or ask the officer for a new link.",
    ),
    LinkProblem.TOO_EARLY: (
        409,
        "Your video call has not started yet",
        "This link works from {opens} (UK time). Please open it again then.",
    ),
}


def _device_hash(request: web.Request) -> str | None:
    token = request.cookies.get(keys.CALLER_DEVICE_COOKIE)
    return hashlib.sha256(token.encode()).hexdigest() if token else None


def _open(request: web.Request) -> Call | LinkProblem:
    with request.app[keys.DB].session() as session:
        return calls.open_link(
            session, request.match_info["token"], _device_hash(request), source_of(request)
        )


def _problem(
    request: web.Request, problem: LinkProblem, session: Session | None = None
) -> web.Response:
    status, title, text = PROBLEMS[problem]
    if problem is LinkProblem.TOO_EARLY:
        token = request.match_info["token"]
        if session is None:
            with request.app[keys.DB].session() as own:
                opens_at = calls.opens_at(own, token)
        else:
            opens_at = calls.opens_at(session, token)
        text = text.format(opens=london_label(opens_at) if opens_at else "shortly before")
    return aiohttp_jinja2.render_template(
        "caller/problem.html", request, {"title": title, "text": text}, status=status
    )


@routes.get("/v/{token}", name="caller_link")
@public
async def link(request: web.Request) -> web.StreamResponse:
    call = _open(request)
    if isinstance(call, LinkProblem):
        return _problem(request, call)
    if call.consent_at is not None and _device_hash(request) == call.caller_device_hash:
        raise web.HTTPSeeOther(f"/v/{request.match_info['token']}/call")
    return aiohttp_jinja2.render_template(
        "caller/consent.html",
        request,
        {"token": request.match_info["token"], "notice_version": calls.NOTICE_VERSION},
    )


@routes.post("/v/{token}", name="caller_consent")
@public
async def consent(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    token = request.match_info["token"]
    choice = Consent(
        video=form.get("consent_video") == "yes",
        recording=form.get("consent_recording") == "yes",
        location=form.get("consent_location") == "yes",
    )
    device = request.cookies.get(keys.CALLER_DEVICE_COOKIE) or secrets.token_urlsafe(32)
    device_hash = hashlib.sha256(device.encode()).hexdigest()
    with request.app[keys.DB].session() as session:
        call = calls.open_link(session, token, _device_hash(request), source_of(request))
        if isinstance(call, LinkProblem):
            return _problem(request, call, session)
        agreed = calls.record_consent(session, call, choice, device_hash, source_of(request))
    if not agreed:
        return aiohttp_jinja2.render_template(
            "caller/consent.html",
            request,
            {
                "token": token,
                "notice_version": calls.NOTICE_VERSION,
                "error": "A video call needs your agreement. If you would rather not, "
                "an officer can visit you instead: tell the officer who called you.",
            },
            status=400,
        )
    response = web.HTTPSeeOther(f"/v/{token}/call")
    response.set_cookie(
        keys.CALLER_DEVICE_COOKIE, device, secure=True, httponly=True, samesite="Strict", path="/"
    )
    raise response


@routes.get("/v/{token}/call", name="caller_call")
@public
@grants("camera", "microphone", "geolocation")
async def call_page(request: web.Request) -> web.StreamResponse:
    call = _open(request)
    if isinstance(call, LinkProblem):
        return _problem(request, call)
    if call.consent_at is None:
        raise web.HTTPSeeOther(f"/v/{request.match_info['token']}")
    return aiohttp_jinja2.render_template(
        "caller/call.html",
        request,
        {"token": request.match_info["token"], "call": call},
    )


@routes.get("/ws/v/{token}", name="caller_ws")
@public
async def caller_socket(request: web.Request) -> web.StreamResponse:
    require_same_origin(request)
    call = _open(request)
    if isinstance(call, LinkProblem):
        raise web.HTTPForbidden(text=f"link refused: {call.value}")
    if call.consent_at is None:
        raise web.HTTPForbidden(text="consent first")
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=1024 * 1024)
    await ws.prepare(request)
    await request.app[keys.HUB].serve(call.public_id, Participant(CALLER, ws, source_of(request)))
    return ws
