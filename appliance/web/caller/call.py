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
from sqlalchemy.exc import IntegrityError

from appliance import i18n, metrics
from appliance.live.ice import browser_ice_server, ice_servers
from appliance.live.participants import CALLER, Participant
from appliance.live.protocol import SignallingSocket
from appliance.models import FINAL_STATES, Call, CallState, Incident, User
from appliance.services.audit import Actor
from appliance.services.calls import invites, life
from appliance.services.calls.invites import LOCATION, UPLOAD, VIDEO, Consent, LinkProblem
from appliance.services.governance import notice
from appliance.services.intake import incidents, uploads
from appliance.services.intake.uploads import Limits
from appliance.services.rvr import track
from appliance.web import keys
from appliance.web.access import (
    grants,
    public,
    require_same_origin,
    source_of,
)
from appliance.web.caller_links import (
    TITLES,
    caller_gettext,
    caller_link,
    device_hash_of,
    open_for,
    problem_page,
    rejoin_refused_page,
    use_asked_language,
)

routes = web.RouteTableDef()

# Where a caller who has agreed goes next, by kind.
NEXT_STEP = {VIDEO: "call", UPLOAD: "upload", LOCATION: "location"}


def _consent_page(
    request: web.Request,
    kind: str,
    call: Call,
    error: str = "",
    status: int = 200,
    errors: list[tuple[str, str]] | None = None,
) -> web.Response:
    template = notice.CONSENT_PAGES[kind]
    settings = request.app[keys.SETTINGS]
    return aiohttp_jinja2.render_template(
        template,
        request,
        {
            **_who(request, call),
            "errors": errors or [],
            "token": request.match_info["token"],
            "notice": notice.of(settings),
            "notice_version": _notice_version(request, kind),
            "page_title": TITLES[kind],
            "limits": Limits.from_settings(request.app[keys.SETTINGS]),
            "human_size": uploads.human_size,
            "error": error,
        },
        status=status,
    )


def _who(request: web.Request, call: Call) -> dict[str, str]:
    """The officer's name and the incident's reference, which tell a caller the link is
    real: the officer on the call, else the incident's owner. Neither on the neutral look,
    where either could give the call away (called with no session open)."""
    if request.get(keys.NEUTRAL_LOOK, False):
        return {"officer_name": "", "reference": ""}
    with request.app[keys.DB].reader() as session:
        incident = session.get(Incident, call.incident_id)
        officer_id = call.handler_id or (incident.owner_id if incident else None)
        officer = session.get(User, officer_id) if officer_id else None
        return {
            "officer_name": officer.display_name if officer else "",
            "reference": incident.cad_reference if incident else "",
        }


def _notice_version(request: web.Request, kind: str) -> str:
    """The version of the notice this request's consent page shows (or showed)."""
    neutral = bool(request.get(keys.NEUTRAL_LOOK, False))
    return notice.version(
        request.app[keys.SETTINGS],
        notice.CONSENT_PAGES[kind],
        neutral,
        request.get(keys.LANGUAGE, i18n.SOURCE),
    )


@routes.get("/privacy", name="privacy")
@public
async def privacy(request: web.Request) -> web.StreamResponse:
    """The full privacy notice, linked from every caller page; made from the settings.

    An RVR page links ``?look=neutral``: the same notice in the page's neutral look, the
    force named only where ``rvr_show_force_name`` allows, so opening it on a watched
    phone gives away no more than the page did. ``?lang=`` carries the caller's language."""
    settings = request.app[keys.SETTINGS]
    neutral = request.query.get("look") == "neutral"
    request[keys.NEUTRAL_LOOK] = neutral
    use_asked_language(request)
    return aiohttp_jinja2.render_template(
        notice.PRIVACY_PAGE,
        request,
        {
            "notice": notice.of(settings),
            "notice_version": notice.version(
                settings, notice.PRIVACY_PAGE, neutral, request[keys.LANGUAGE]
            ),
            "page_title": "Privacy notice",
            "token": "",
        },
    )


def _agreed_here(request: web.Request, call: Call) -> bool:
    return call.consent_at is not None and device_hash_of(request) == call.caller_device_hash


@routes.get("/v/{token}", name="caller_link")
@public
async def link(request: web.Request) -> web.StreamResponse:
    call, link = open_for(request)
    kind = link.kind
    if isinstance(call, LinkProblem):
        return problem_page(request, call, link)
    with request.app[keys.DB].session() as session:
        incident = session.get(Incident, call.incident_id)
        if incident is not None and incidents.record_first_screen(session, incident):
            lane = "rvr" if track.is_rvr(request.app[keys.SETTINGS], incident) else "standard"
            metrics.CALLER_FIRST_SCREEN.labels(lane).observe(
                incident.caller_first_screen_seconds or 0.0
            )
    if _agreed_here(request, call):
        raise web.HTTPSeeOther(f"/v/{request.match_info['token']}/{NEXT_STEP[kind]}")
    return _consent_page(request, kind, call)


@routes.post("/v/{token}", name="caller_consent")
@public
async def consent(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    token = request.match_info["token"]
    unanswered = form.get("consent_video") not in ("yes", "no")
    choice = Consent(
        video=form.get("consent_video") == "yes",
        recording=form.get("consent_recording") == "yes",
        location=form.get("consent_location") in ("yes", "live"),
        location_updates=form.get("consent_location") == "live",
    )
    device = request.cookies.get(keys.CALLER_DEVICE_COOKIE) or secrets.token_urlsafe(32)
    device_hash = hashlib.sha256(device.encode()).hexdigest()
    with request.app[keys.DB].session() as session:
        link = caller_link(request, session)
        call = invites.open_link(session, link, device_hash_of(request), source_of(request))
        kind = link.kind
        if not isinstance(call, LinkProblem) and not (kind == VIDEO and unanswered):
            neutral = bool(request.get(keys.NEUTRAL_LOOK, False))
            shown = notice.remember(
                session,
                request.app[keys.SETTINGS],
                notice.CONSENT_PAGES[kind],
                neutral,
                request.get(keys.LANGUAGE, i18n.SOURCE),
            )
            if kind == VIDEO:
                agreed = invites.record_consent(
                    session,
                    call,
                    choice,
                    device_hash,
                    source_of(request),
                    notice_version=shown,
                )
            else:
                agreed = invites.record_collection_consent(
                    session,
                    call,
                    kind,
                    form.get("consent") == "yes",
                    device_hash,
                    source_of(request),
                    notice_version=shown,
                )
    if isinstance(call, LinkProblem):
        return problem_page(request, call, link)
    _ = caller_gettext(request)
    if kind == VIDEO and unanswered:
        question = (
            _("Select yes if you agree to this video call")
            if request.get(keys.NEUTRAL_LOOK, False)
            else _("Select yes if you agree to a video call")
        )
        return _consent_page(
            request, kind, call, status=400, errors=[("consent_video-yes", question)]
        )
    if not agreed:
        error = {
            VIDEO: _(
                "A video call needs your agreement. If you would rather not, "
                "an officer can visit you instead: tell the officer who called you."
            ),
            UPLOAD: _(
                "Sending photos and videos needs your agreement. If you would rather "
                "not, tell the officer who called you."
            ),
            LOCATION: _(
                "Sharing your location needs your agreement. If you would rather "
                "not, tell the officer where you are instead."
            ),
        }[kind]
        return _consent_page(request, kind, call, error, status=400)
    response = web.HTTPSeeOther(f"/v/{token}/{NEXT_STEP[kind]}")
    response.set_cookie(
        keys.CALLER_DEVICE_COOKIE, device, secure=True, httponly=True, samesite="Strict", path="/"
    )
    raise response


@routes.post("/v/{token}/language", name="caller_language")
@public
async def switch_language(request: web.Request) -> web.StreamResponse:
    """The caller's own choice of language, kept with the link (audited): every page of
    it, and a statement sent to it later, is then in that language. Only the phone that
    agreed may change it once someone has; back to the page it came from."""
    form = await request.post()
    token = request.match_info["token"]
    chosen = str(form.get("language", ""))
    with request.app[keys.DB].session() as session:
        link = caller_link(request, session)
        device = device_hash_of(request)
        mine = link.call is None or link.call.caller_device_hash in (None, device)
        if link.invite is not None and chosen in i18n.OFFERED and mine:
            invites.set_language(session, Actor("caller", source_of(request)), link.invite, chosen)
    back = str(form.get("back", ""))
    same_link = back == f"/v/{token}" or back.startswith(f"/v/{token}/")
    raise web.HTTPSeeOther(back if same_link and "//" not in back else f"/v/{token}")


@routes.get("/v/{token}/call", name="caller_call")
@public
@grants("camera", "microphone", "geolocation")
async def call_page(request: web.Request) -> web.StreamResponse:
    call, link = open_for(request)
    kind = link.kind
    if isinstance(call, LinkProblem):
        return problem_page(request, call, link)
    if call.consent_at is None or kind != VIDEO:
        raise web.HTTPSeeOther(f"/v/{request.match_info['token']}")
    return aiohttp_jinja2.render_template(
        "caller/call.html",
        request,
        {
            "token": request.match_info["token"],
            "call": call,
            "location_every": request.app[keys.SETTINGS].location_update_seconds,
            # For the check before joining (network-check.js); the socket's hello
            # brings the call's own, fresh ones.
            "ice_servers": [
                browser_ice_server(s)
                for s in ice_servers(request.app[keys.SETTINGS], call.public_id)
            ],
            **_who(request, call),
        },
    )


@routes.get("/v/{token}/status", name="caller_status")
@public
async def call_status(request: web.Request) -> web.StreamResponse:
    """Whether the call is still live, for a camera check that has no socket yet: the page
    learns that the officer ended the call (or the link was revoked) while it waited; and
    for the ended page, how long the caller may still rejoin. Read only, and only for the
    phone that agreed; says nothing else about the call."""
    with request.app[keys.DB].reader() as session:
        link = caller_link(request, session)
        call, invite = link.call, link.invite
        device = device_hash_of(request)
        if call is None or invite is None or device is None or call.caller_device_hash != device:
            raise web.HTTPNotFound(text="no call for this phone")
        live = invite.revoked_at is None and CallState(call.state) not in FINAL_STATES
        left = life.rejoin_seconds_left(call, invite, device)
    response = web.json_response({"live": live, "rejoinSeconds": left})
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.post("/v/{token}/rejoin", name="caller_rejoin")
@public
async def rejoin(request: web.Request) -> web.StreamResponse:
    """ "Rejoin the call" on the ended page: a new call on the same link, for the phone that
    ended the call, while its window is open; it asks for consent again (docs/signalling.md)."""
    try:
        with request.app[keys.DB].session() as session:
            link = caller_link(request, session)
            again = None
            if link.call is not None and link.kind == VIDEO:
                again = life.rejoin(
                    session,
                    request.app[keys.SETTINGS],
                    link.call,
                    device_hash_of(request),
                    source_of(request),
                )
    except IntegrityError:  # a second tap at the same moment: the first made the call
        raise web.HTTPSeeOther(f"/v/{request.match_info['token']}") from None
    if again is None:
        return rejoin_refused_page(request, link)
    raise web.HTTPSeeOther(f"/v/{request.match_info['token']}")


@routes.get("/ws/v/{token}", name="caller_ws")
@public
async def caller_socket(request: web.Request) -> web.StreamResponse:
    require_same_origin(request)
    call, link = open_for(request)
    kind = link.kind
    if isinstance(call, LinkProblem):
        raise web.HTTPForbidden(text=f"link refused: {call.value}")
    if kind != VIDEO:
        raise web.HTTPForbidden(text="this link is not for a video call")
    if call.consent_at is None:
        raise web.HTTPForbidden(text="consent first")
    ws = SignallingSocket()
    await ws.prepare(request)
    await request.app[keys.HUB].serve(call.public_id, Participant(CALLER, ws, source_of(request)))
    return ws
