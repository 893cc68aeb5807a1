"""What the web handlers share: who is acting, the incident or call a request names,
acting on a form (JSON for the console's fetch, the page for a plain form), the incident
page, API errors and refusals from outside. Beside it: ``files`` (sealed files streamed
with ranges), ``statement_views`` and ``caller_links`` (the caller's link resolved once
per request).

A handler imports its helpers from these and never from another handler, so each
handler module stays one audience's routes and nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiDictProxy
from sqlmodel import Session

from appliance import i18n
from appliance.models import (
    THRIVE_PARTS,
    THRIVE_RATINGS,
    Call,
    CallState,
    Incident,
    Role,
    User,
    WebSession,
)
from appliance.services.audit import Actor
from appliance.services.calls import invites, states
from appliance.services.calls.invites import VIDEO
from appliance.services.evaluation import trial
from appliance.services.identity import accounts, web_sessions
from appliance.services.intake import appointments, incidents, locations, uploads
from appliance.services.intake.appointments import LONDON
from appliance.services.intake.incidents import IncidentError
from appliance.services.outbox import cad, messages
from appliance.services.record import officer, statements
from appliance.services.record.statements import StatementConflict, StatementError
from appliance.services.rvr import track
from appliance.web import keys
from appliance.web.access import current_roles, current_user, source_of

log = logging.getLogger("evr.web")
# The static files again for the caller's pages, sent no-store (caller_safety.py).
ASSETS_PREFIX = "/assets"
ASSETS_ROUTE = "caller_assets"
Work = Callable[[Session, Incident, MultiDictProxy[Any]], dict[str, Any]]


class Render(Protocol):
    def __call__(
        self, request: web.Request, incident_id: int, *, error: str, status: int
    ) -> web.Response: ...


# -- staff: who acts, on what ---------------------------------------------------------------

STAFF = (Role.HANDLER, Role.SUPERVISOR)


def uk_time(at: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored instant as a UK wall clock, with GMT or BST said (an hour out in summer
    otherwise): the one filter every staff page shows a time through. Stored times are
    UTC; one without a zone is taken as UTC. A format without hours gives the UK day."""
    if at is None:
        return ""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    local = at.astimezone(LONDON)
    if "%H" not in fmt:  # a day alone: the zone would say nothing
        return local.strftime(fmt)
    return f"{local.strftime(fmt)} {local:%Z}"


# The incident's timeline in words; an action not named here is said from its code
# ("call.consent_declined" → "Call: consent declined").
EVENT_WORDS = {
    "incident.created": "Incident created",
    "incident.assigned": "Incident assigned",
    "incident.eligibility": "Eligibility checklist answered",
    "incident.thrive": "THRIVE assessment saved",
    "incident.outcome": "Outcome recorded",
    "incident.closed": "Incident closed",
    "incident.first_screen": "The caller opened the link",
    "invite.created": "Link made",
    "invite.opened": "The caller opened the link",
    "invite.revoked": "Link revoked",
    "call.consent": "The caller agreed to the video call",
    "call.consent_declined": "The caller declined the video call",
    "call.waiting": "The caller joined and waited",
    "call.connected": "Call connected",
    "call.ended": "Call ended",
    "call.second_device_refused": "A second phone was refused the link",
    "recording.started": "Recording started",
    "recording.finished": "Recording finished",
    "recording.partial": "Recording kept in part",
    "snapshot.taken": "Snapshot taken",
    "statement.signed": "Statement signed by the caller",
    "location.shared": "The caller shared their location",
    "upload.received": "Photo or video received",
    "rvr.caller_not_safe": "Caller not safe: video ended",
    "rvr.caller_safe": "Caller confirmed alone and safe",
}


def plain_event(action: str) -> str:
    """An audit action as a handler would say it."""
    if action in EVENT_WORDS:
        return EVENT_WORDS[action]
    subject, _, what = action.partition(".")
    return f"{subject.capitalize()}: {what.replace('_', ' ')}" if what else action


NOTICES = {
    "sms_queued": "The link is on its way to the caller by SMS. Its status shows below.",
    "appointment_book": "Booked. The caller gets an SMS with the time and the link.",
    "appointment_move": "Moved. The caller gets an SMS with the new time and a new link.",
    "appointment_cancel": "Cancelled. The link no longer works; the caller gets an SMS.",
}


def incident_for(
    request: web.Request, session: Session, incident_id: int, act: bool = True
) -> Incident:
    """The incident, if this user may act on it, or only see it (else 404 or 403). An RVR
    incident (domestic abuse) only for RVR officers and supervisors, on every page."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise web.HTTPNotFound(text="There is no incident with that reference.")
    allowed = incidents.may_act if act else incidents.may_see
    if not allowed(current_user(request), current_roles(request), incident):
        raise web.HTTPForbidden(text="This incident is not yours to act on.")
    if track.is_rvr(request.app[keys.SETTINGS], incident) and not (
        {Role.RVR_OFFICER, Role.SUPERVISOR} & set(current_roles(request))
    ):
        raise web.HTTPForbidden(text="Rapid Video Response work needs the RVR officer role.")
    return incident


def next_step(
    incident: Incident,
    calls: list[Call],
    kinds: dict[int, str],
    *,
    rvr: bool,
    video_held: str | None,
    booked: bool,
) -> str:
    """What the handler does next on this incident, in words, for the page's header: the
    first step not yet done, so the page leads rather than lists."""
    video = [c for c in calls if kinds.get(c.id or 0, VIDEO) == VIDEO]
    states_now = {CallState(c.state) for c in video}
    if incident.status == "closed":
        return "Closed: nothing more to do. Reopen it through a supervisor if something changes."
    if incident.owner_id is None:
        return "Take this incident to work on it."
    if rvr:
        return (
            "Rapid Video Response: open the RVR page, ask the safety questions, then Transfer now."
        )
    if CallState.CONNECTED in states_now:
        return "A video call is live: open the call."
    if CallState.WAITING in states_now:
        return "The caller is waiting: open the call and admit them."
    if incident.outcome_code:
        return "Outcome recorded: close the incident when nothing else is needed."
    if any(c.connected_at is not None for c in video):
        return "The call has ended: record THRIVE, notes and the outcome."
    if incident.eligibility == "unknown":
        return "Answer the eligibility checklist: every answer yes allows a video call."
    if incident.eligibility == "ineligible":
        return "Not eligible for video: arrange a response as usual and record the outcome."
    if video_held:
        return f"No video link: {video_held}. Record the outcome when it is done."
    if CallState.INVITED in states_now:
        return "Link made: wait for the caller to join; the call shows here and on Waiting callers."
    if booked:
        return "Appointment booked: the caller gets a reminder; open the call when they join."
    return "Send the caller a video call link (by SMS, or make one here to pass on)."


def render_incident(
    request: web.Request,
    incident_id: int,
    link: str = "",
    error: str = "",
    status: int = 200,
    link_kind: str = invites.VIDEO,
) -> web.Response:
    settings = request.app[keys.SETTINGS]
    with request.app[keys.DB].reader() as session:
        incident = incident_for(request, session, incident_id, act=False)
        incident_calls = states.for_incident(session, incident.id or 0)
        timeline = incidents.timeline(session, incident)
        sms = messages.for_incident(session, incident.id or 0)
        thrive = officer.thrive_history(session, incident)
        notes = officer.notes_of(session, incident)
        booking = appointments.booking_for(session, settings, incident.id or 0)
        kinds = invites.kinds_for(session, incident_calls)
        items = uploads.for_incident(session, incident.id or 0)
        shared = locations.track(session, incident.id or 0)
        statement_versions = statements.versions(session, incident)
        cad_deliveries = cad.for_incident(session, incident.id or 0)
        video_held = trial.video_refusal(session, incident)
        allocation = trial.allocation_of(session, incident)
    rvr = track.is_rvr(settings, incident)
    had_call = any(c.connected_at is not None for c in incident_calls)
    return aiohttp_jinja2.render_template(
        "incidents/show.html",
        request,
        {
            "incident": incident,
            "caller_languages": [(c, i18n.LANGUAGES[c].name) for c in i18n.OFFERED],
            "caller_language_default": settings.caller_language_default,
            "calls": incident_calls,
            "kinds": kinds,
            "uploads": items,
            "locations": shared,
            "human_size": uploads.human_size,
            "link": link,
            "link_kind": link_kind,
            "error": error,
            "timeline": timeline,
            "messages": sms,
            "thrive": thrive,
            "notes": notes,
            "thrive_parts": THRIVE_PARTS,
            "thrive_ratings": THRIVE_RATINGS,
            "outcomes": settings.outcome_codes,
            "deploying": settings.outcome_codes_deploying,
            "statements": statement_versions,
            "declaration": settings.statement_declaration,
            "cad_deliveries": cad_deliveries,
            "booking": booking,
            "notice": NOTICES.get(request.query.get("notice", ""), ""),
            "questions": settings.eligibility_questions,
            "may_act": incidents.may_act(current_user(request), current_roles(request), incident),
            "rvr": rvr,
            "video_held": video_held,
            "allocation": allocation,
            "next_step": next_step(
                incident,
                incident_calls,
                kinds,
                rvr=rvr,
                video_held=video_held,
                booked=booking.current is not None,
            ),
            # After a call, or once closed, the long sections start folded: the page
            # leads with what is left to do instead of 5,000 px of history.
            "fold": had_call or incident.status == "closed",
            # ...but the links and calls stay open while one is live (its Revoke button).
            "live": any(
                CallState(c.state) in (CallState.INVITED, CallState.WAITING, CallState.CONNECTED)
                for c in incident_calls
            ),
        },
        status=status,
    )


# How long a link made "shown only now" is shown again to the browser that made it.
LINK_SHOWN_SECONDS = 600.0


def remember_link(request: web.Request, incident_id: int, link: str, kind: str) -> None:
    """Keep a new link for the page the POST redirects to (POST/redirect/GET): reloading
    that page shows the same link again instead of posting the form twice.

    Held in this process's memory only, for this browser's session, for a few minutes:
    the token is never written down in clear, and a restart forgets it.
    """
    shown = request.app[keys.SHOWN_LINKS]
    now = time.monotonic()
    for key in [k for k, (_, _, at) in shown.items() if now - at > LINK_SHOWN_SECONDS]:
        del shown[key]
    shown[(request[keys.WEB_SESSION].token_hash, incident_id)] = (link, kind, now)


def shown_link(request: web.Request, incident_id: int) -> tuple[str, str]:
    """The link this browser made for the incident a moment ago, and its kind, or blanks."""
    key = (request[keys.WEB_SESSION].token_hash, incident_id)
    link, kind, at = request.app[keys.SHOWN_LINKS].get(key, ("", VIDEO, 0.0))
    if not link or time.monotonic() - at > LINK_SHOWN_SECONDS:
        return "", VIDEO
    return link, kind


def actor_of(request: web.Request) -> Actor:
    """The signed-in user acting, and from where (for the audit trail)."""
    return Actor(current_user(request).username, source_of(request))


def call_for(request: web.Request, session: Session) -> tuple[Call, Incident]:
    call = states.by_public_id(session, request.match_info["public_id"])
    if call is None:
        raise web.HTTPNotFound(text="There is no such call.")
    return call, incident_for(request, session, call.incident_id)


def staff_recheck(request: web.Request, incident_id: int) -> Callable[[], str | None]:
    """What a staff socket on a live call asks again on every message and every few
    seconds (the hub's ``Participant.recheck``): is this browser still signed in, the
    account enabled, and the call's incident still this user's to act on? The reason to
    close, or None. Reads only, so it never waits on the writer's lock."""
    db, settings = request.app[keys.DB], request.app[keys.SETTINGS]
    policy = web_sessions.SessionPolicy.from_settings(settings)
    session_id = request[keys.WEB_SESSION].id or 0

    def recheck() -> str | None:
        with db.reader() as session:
            refusal = web_sessions.socket_refusal(session, session_id, policy)
            if refusal is not None:
                return refusal
            web_session = session.get(WebSession, session_id)
            user = session.get(User, web_session.user_id) if web_session else None
            incident = session.get(Incident, incident_id)
            if user is None or incident is None:
                return "this call is no longer yours"
            roles = accounts.roles_of(session, user.id or 0)
            if not incidents.may_act(user, roles, incident):
                return "the incident was re-assigned: this call is no longer yours"
            if track.is_rvr(settings, incident) and not roles & {
                Role.RVR_OFFICER,
                Role.SUPERVISOR,
            }:
                return "Rapid Video Response work needs the RVR officer role"
        return None

    return recheck


# -- forms and pages -----------------------------------------------------------------------


async def act_on_form(
    request: web.Request,
    work: Work,
    *,
    refusals: tuple[type[Exception], ...] = (IncidentError, StatementError),
    check: Callable[[Incident], None] | None = None,
    render: Render | None = None,
    done: str = "",
) -> web.StreamResponse:
    """Run one change to the incident the route names in its own transaction, then
    answer the console's fetch with JSON, or a plain form with the page.

    A refusal changes nothing: 400, or 409 when the state forbids it (a signed
    statement). ``check`` refuses before the work; ``render`` draws the page again
    with the error (the incident page by default); ``done`` is where a plain form
    goes after success (the incident page by default).
    """
    incident_id = int(request.match_info["incident_id"])
    form = await request.post()
    error, status, result = "", 400, {}
    try:
        with request.app[keys.DB].session() as session:
            incident = incident_for(request, session, incident_id)
            if check is not None:
                check(incident)
            result = work(session, incident, form)
    except refusals as exc:
        error = str(exc)
        status = 409 if isinstance(exc, StatementConflict) else 400
    if fetched(request):
        if error:
            return web.json_response({"error": error}, status=status)
        return web.json_response({"ok": True, **result})
    if error:
        draw = render or render_incident
        return draw(request, incident_id, error=f"Not saved: {error}.", status=status)
    raise web.HTTPSeeOther(done or f"/incidents/{incident_id}")


def fetched(request: web.Request) -> bool:
    """Sent by the page's own script (ajax-form.js), which wants JSON back."""
    return request.headers.get("X-Requested-With") == "fetch"


def api_error(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if field:
        error["field"] = field
    return web.json_response({"error": error}, status=status)


# -- refusals from outside -----------------------------------------------------------------


async def note_refusal(
    request: web.Request,
    action: str,
    *,
    actor: str = "anonymous",
    object_type: str = "",
    object_id: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """Audit a refusal through the tally: one row per kind and source a minute, and no
    database session at all while the source's window is open."""
    tally = request.app[keys.GUARDS].tally
    source = source_of(request)
    if tally.counted(action, source, object_id):
        return
    db = request.app[keys.DB]

    def write() -> None:
        with db.session() as session:
            tally.record(
                session,
                Actor(actor, source),
                action,
                object_type=object_type,
                object_id=object_id,
                detail=detail,
            )

    await asyncio.to_thread(write)


def too_many(retry_after: int) -> web.Response:
    """The API's 429 for a throttled source."""
    response = api_error(
        429, "too_many_requests", f"too many refused requests; try again in {retry_after} s"
    )
    response.headers["Retry-After"] = str(retry_after)
    return response
