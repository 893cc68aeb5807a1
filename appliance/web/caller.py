"""The caller's pages, reached only by the personal link in their SMS.

Mobile first, a neutral title, nothing cached. A bad link (unknown, expired,
revoked, finished, in use on another phone) gets a plain page and opens no media.
One link, ``/v/{token}``, serves every invite kind: a video call, an upload of
photos and videos, or the phone's location shared once.
"""

from __future__ import annotations

import hashlib
import secrets

import aiohttp_jinja2
from aiohttp import web

from appliance import metrics
from appliance.live.hub import CALLER, Participant
from appliance.models import Call, Incident
from appliance.services import calls, incidents, rvr, statements, uploads
from appliance.services.appointments import london_label
from appliance.services.calls import LOCATION, UPLOAD, VIDEO, Consent, LinkProblem
from appliance.services.uploads import Limits
from appliance.web import keys
from appliance.web.access import (
    grants,
    public,
    require_same_origin,
    source_of,
)
from appliance.web.caller_safety import device_hash_of, note_look

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


# Wording for upload and location links where the video call's would mislead.
COLLECTION_PROBLEMS = {
    LinkProblem.REVOKED: (
        410,
        "This link is no longer in use",
        "The officer cancelled this link. They may send you a new one.",
    ),
    LinkProblem.FINISHED: (
        410,
        "This link has been used",
        "Thank you: what you sent has reached us. If you need us again, please call.",
    ),
    LinkProblem.OTHER_DEVICE: (
        409,
        "This link is open on another phone",
        "This link works on one phone only. Use the phone you started on, or ask the "
        "officer for a new link.",
    ),
}
TITLES = {VIDEO: "Video call", UPLOAD: "Send photos and videos", LOCATION: "Share where you are"}
# Where a caller who has agreed goes next, by kind.
NEXT_STEP = {VIDEO: "call", UPLOAD: "upload", LOCATION: "location"}


def open_for(request: web.Request) -> tuple[Call | LinkProblem, str]:
    """The link's call (or its problem) and the invite's kind; notes the page's look."""
    token = request.match_info["token"]
    with request.app[keys.DB].session() as session:
        result = calls.open_link(session, token, device_hash_of(request), source_of(request))
        kind = calls.kind_of_token(session, token)
        note_look(request, session, token)
    return result, kind


def problem_page(request: web.Request, problem: LinkProblem, kind: str = VIDEO) -> web.Response:
    """A plain page saying why the link does not work (called after any session closed)."""
    if problem is LinkProblem.FINISHED and kind == VIDEO and _statement_waiting(request):
        raise web.HTTPSeeOther(f"/v/{request.match_info['token']}/statement/sign")
    status, title, text = PROBLEMS[problem]
    if kind != VIDEO:
        status, title, text = COLLECTION_PROBLEMS.get(problem, (status, title, text))
    if problem is LinkProblem.TOO_EARLY:
        with request.app[keys.DB].session() as session:
            opens_at = calls.opens_at(session, request.match_info["token"])
        text = text.format(opens=london_label(opens_at) if opens_at else "shortly before")
    return aiohttp_jinja2.render_template(
        "caller/problem.html",
        request,
        {"title": title, "text": text, "page_title": TITLES.get(kind, TITLES[VIDEO])},
        status=status,
    )


def _statement_waiting(request: web.Request) -> bool:
    """After the call, this phone still has a statement to read and sign."""
    with request.app[keys.DB].session() as session:
        call = calls.call_after(
            session,
            request.match_info["token"],
            device_hash_of(request),
            request.app[keys.SETTINGS].statement_sign_hours,
        )
        statement = statements.for_caller(session, call) if call else None
        return statement is not None and statement.state == "sent"


def _consent_page(
    request: web.Request, kind: str, error: str = "", status: int = 200
) -> web.Response:
    template = {
        VIDEO: "caller/consent.html",
        UPLOAD: "caller/consent_upload.html",
        LOCATION: "caller/consent_location.html",
    }[kind]
    return aiohttp_jinja2.render_template(
        template,
        request,
        {
            "token": request.match_info["token"],
            "notice_version": calls.NOTICE_VERSION,
            "page_title": TITLES[kind],
            "limits": Limits.from_settings(request.app[keys.SETTINGS]),
            "human_size": uploads.human_size,
            "error": error,
        },
        status=status,
    )


def _agreed_here(request: web.Request, call: Call) -> bool:
    return call.consent_at is not None and device_hash_of(request) == call.caller_device_hash


@routes.get("/v/{token}", name="caller_link")
@public
async def link(request: web.Request) -> web.StreamResponse:
    call, kind = open_for(request)
    if isinstance(call, LinkProblem):
        return problem_page(request, call, kind)
    with request.app[keys.DB].session() as session:
        incident = session.get(Incident, call.incident_id)
        if incident is not None and incidents.record_first_screen(session, incident):
            track = "rvr" if rvr.is_rvr(request.app[keys.SETTINGS], incident) else "standard"
            metrics.CALLER_FIRST_SCREEN.labels(track).observe(
                incident.caller_first_screen_seconds or 0.0
            )
    if _agreed_here(request, call):
        raise web.HTTPSeeOther(f"/v/{request.match_info['token']}/{NEXT_STEP[kind]}")
    return _consent_page(request, kind)


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
        call = calls.open_link(session, token, device_hash_of(request), source_of(request))
        kind = calls.kind_of_token(session, token)
        note_look(request, session, token)
        if not isinstance(call, LinkProblem):
            if kind == VIDEO:
                agreed = calls.record_consent(
                    session, call, choice, device_hash, source_of(request)
                )
            else:
                agreed = calls.record_collection_consent(
                    session,
                    call,
                    kind,
                    form.get("consent") == "yes",
                    device_hash,
                    source_of(request),
                )
    if isinstance(call, LinkProblem):
        return problem_page(request, call, kind)
    if not agreed:
        error = {
            VIDEO: "A video call needs your agreement. If you would rather not, "
            "an officer can visit you instead: tell the officer who called you.",
            UPLOAD: "Sending photos and videos needs your agreement. If you would rather "
            "not, tell the officer who called you.",
            LOCATION: "Sharing your location needs your agreement. If you would rather "
            "not, tell the officer where you are instead.",
        }[kind]
        return _consent_page(request, kind, error, status=400)
    response = web.HTTPSeeOther(f"/v/{token}/{NEXT_STEP[kind]}")
    response.set_cookie(
        keys.CALLER_DEVICE_COOKIE, device, secure=True, httponly=True, samesite="Strict", path="/"
    )
    raise response


@routes.get("/v/{token}/call", name="caller_call")
@public
@grants("camera", "microphone", "geolocation")
async def call_page(request: web.Request) -> web.StreamResponse:
    call, kind = open_for(request)
    if isinstance(call, LinkProblem):
        return problem_page(request, call, kind)
    if call.consent_at is None or kind != VIDEO:
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
    call, kind = open_for(request)
    if isinstance(call, LinkProblem):
        raise web.HTTPForbidden(text=f"link refused: {call.value}")
    if kind != VIDEO:
        raise web.HTTPForbidden(text="this link is not for a video call")
    if call.consent_at is None:
        raise web.HTTPForbidden(text="consent first")
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=1024 * 1024)
    await ws.prepare(request)
    await request.app[keys.HUB].serve(call.public_id, Participant(CALLER, ws, source_of(request)))
    return ws
