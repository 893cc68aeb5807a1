"""Rapid Video Response for staff: the RVR queue, take next, safety questions, transfer now,
and (from the call console) safety on the call, the DASH checklist and Clare's Law records.

Forms from the console are sent by fetch (``X-Requested-With: fetch``) and answered with
JSON, so the live call is never left; the same forms work as plain POSTs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiDictProxy
from sqlmodel import Session

from appliance.models import DISCLOSURE_KINDS, Call, Incident, Role, utcnow
from appliance.services.calls import life, states
from appliance.services.calls.states import CallError
from appliance.services.intake.incidents import IncidentError
from appliance.services.outbox import messages
from appliance.services.outbox.messages import MessageError
from appliance.services.rvr import dash, track
from appliance.services.rvr.dash import DashError
from appliance.services.rvr.track import SAFETY_QUESTIONS, RvrError
from appliance.web import keys
from appliance.web.access import current_roles, current_user, requires
from appliance.web.toolkit import act_on_form, actor_of, incident_for

routes = web.RouteTableDef()
RVR_ROLES = (Role.RVR_OFFICER, Role.SUPERVISOR)
Refusals = (RvrError, DashError, IncidentError, CallError, MessageError)
NOTICES = {
    "taken": "You have this RVR incident. Ask the safety questions while the caller is on the "
    "phone.",
    "safe": "All safety answers were yes: you may transfer now.",
    "sent": "The link is on its way. Stay on the phone until the caller has it open.",
    "not_safe": "The video was ended: caller not safe. The incident is flagged for an "
    "emergency call-back.",
}


# -- the RVR queue ------------------------------------------------------------------------


def _render_queue(request: web.Request, error: str = "", status: int = 200) -> web.Response:
    settings = request.app[keys.SETTINGS]
    with request.app[keys.DB].reader() as session:
        rows = track.waiting(session, settings)
    return aiohttp_jinja2.render_template(
        "rvr/queue.html",
        request,
        {"rows": rows, "now": utcnow(), "error": error, "target": settings.rvr_target_minutes},
        status=status,
    )


@routes.get("/rvr", name="rvr_queue")
@requires(*RVR_ROLES)
async def queue_page(request: web.Request) -> web.StreamResponse:
    return _render_queue(request)


@routes.post("/rvr/next", name="rvr_take_next")
@requires(Role.RVR_OFFICER)
async def take_next(request: web.Request) -> web.StreamResponse:
    if Role.HANDLER not in current_roles(request):
        return _render_queue(request, "An RVR officer also needs the handler role.", 403)
    with request.app[keys.DB].session() as session:
        incident = track.take_next(
            session, request.app[keys.SETTINGS], actor_of(request), current_user(request)
        )
        incident_id = incident.id if incident else None
    if incident_id is None:
        return _render_queue(request, "Nothing is waiting on the RVR queue.", 409)
    raise web.HTTPSeeOther(f"/incidents/{incident_id}/rvr?notice=taken")


# -- one RVR incident ---------------------------------------------------------------------


def _render_incident(
    request: web.Request, incident_id: int, error: str = "", status: int = 200, **extra: Any
) -> web.Response:
    settings = request.app[keys.SETTINGS]
    with request.app[keys.DB].reader() as session:
        incident = incident_for(request, session, incident_id, act=False)
        if not track.is_rvr(settings, incident):
            raise web.HTTPNotFound(text="This incident is not on the RVR track.")
        case = track.case_of(session, incident)
        incident_calls = states.for_incident(session, incident.id or 0)
        sms = messages.for_incident(session, incident.id or 0)
        disclosures = track.disclosures_of(session, incident)
        assessment = dash.latest(session, incident)
    return aiohttp_jinja2.render_template(
        "rvr/incident.html",
        request,
        {
            "incident": incident,
            "case": case,
            "calls": incident_calls,
            "messages": sms,
            "disclosures": disclosures,
            "disclosure_kinds": DISCLOSURE_KINDS,
            "assessment": assessment,
            "questions": SAFETY_QUESTIONS,
            "link_minutes": settings.rvr_link_minutes,
            "notice": NOTICES.get(request.query.get("notice", ""), ""),
            "error": error,
            "instead": extra.get("instead", []),
        },
        status=status,
    )


@routes.get(r"/incidents/{incident_id:\d+}/rvr", name="rvr_incident")
@requires(*RVR_ROLES)
async def incident_page(request: web.Request) -> web.StreamResponse:
    return _render_incident(request, int(request.match_info["incident_id"]))


def _answer(value: Any) -> bool | None:
    return {"yes": True, "no": False}.get(str(value))


@routes.post(r"/incidents/{incident_id:\d+}/rvr/safety", name="rvr_safety")
@requires(*RVR_ROLES)
async def safety(request: web.Request) -> web.StreamResponse:
    incident_id = int(request.match_info["incident_id"])
    form = await request.post()
    answers = {q.key: _answer(form.get(q.key)) for q in SAFETY_QUESTIONS}
    error, result = "", None
    try:
        with request.app[keys.DB].session() as session:
            incident = incident_for(request, session, incident_id)
            result = track.record_safety(
                session,
                request.app[keys.SETTINGS],
                actor_of(request),
                current_user(request),
                incident,
                answers,
            )
    except (RvrError, IncidentError) as exc:
        error = str(exc)
    for call in result.revoked if result else []:  # a "no": every open link is withdrawn
        await request.app[keys.HUB].hang_up(call.public_id, life.REVOKED)
    if error or result is None:
        return _render_incident(request, incident_id, f"Not recorded: {error}.", 400)
    if not result.passed:
        return _render_incident(
            request,
            incident_id,
            "No link will be sent: a safety answer was no. Do this instead:",
            instead=result.instead,
        )
    raise web.HTTPSeeOther(f"/incidents/{incident_id}/rvr?notice=safe")


@routes.post(r"/incidents/{incident_id:\d+}/rvr/transfer", name="rvr_transfer")
@requires(*RVR_ROLES)
async def transfer(request: web.Request) -> web.StreamResponse:
    incident_id = int(request.match_info["incident_id"])
    error = ""
    try:
        with request.app[keys.DB].session() as session:
            incident = incident_for(request, session, incident_id)
            track.transfer(
                session,
                request.app[keys.SETTINGS],
                actor_of(request),
                current_user(request),
                incident,
            )
    except Refusals as exc:
        error = str(exc)
    if error:
        return _render_incident(request, incident_id, f"Not sent: {error}.", 409)
    raise web.HTTPSeeOther(f"/incidents/{incident_id}/rvr?notice=sent")


# -- from the call console (also plain forms) -----------------------------------------------

Work = Callable[[Session, Incident, MultiDictProxy[Any]], str]


async def _act(
    request: web.Request, incident_id: int, work: Work, then: str = ""
) -> web.StreamResponse:
    """One change to an RVR incident, as a plain form or from the console's fetch."""
    settings = request.app[keys.SETTINGS]

    def on_track(incident: Incident) -> None:
        if not track.is_rvr(settings, incident):
            raise RvrError("this incident is not on the RVR track")

    return await act_on_form(
        request,
        lambda session, incident, form: {"message": work(session, incident, form)},
        refusals=Refusals,
        check=on_track,
        render=_render_incident,
        done=f"/incidents/{incident_id}/rvr{then}",
    )


@routes.post(r"/incidents/{incident_id:\d+}/rvr/caller-safe", name="rvr_caller_safe")
@requires(*RVR_ROLES)
async def caller_safe(request: web.Request) -> web.StreamResponse:
    settings = request.app[keys.SETTINGS]

    def work(session: Session, incident: Incident, form: MultiDictProxy[Any]) -> str:
        track.confirm_caller_safe(
            session, settings, actor_of(request), current_user(request), incident
        )
        if "code_word" in form:
            track.set_code_word(
                session, settings, actor_of(request), incident, str(form.get("code_word", ""))
            )
        return "Recorded: the caller is alone and safe."

    return await _act(request, int(request.match_info["incident_id"]), work)


@routes.post(r"/incidents/{incident_id:\d+}/rvr/code-word", name="rvr_code_word")
@requires(*RVR_ROLES)
async def code_word(request: web.Request) -> web.StreamResponse:
    settings = request.app[keys.SETTINGS]

    def work(session: Session, incident: Incident, form: MultiDictProxy[Any]) -> str:
        word = str(form.get("code_word", ""))
        track.set_code_word(session, settings, actor_of(request), incident, word)
        return "Code word noted." if word.strip() else "Code word cleared."

    return await _act(request, int(request.match_info["incident_id"]), work)


@routes.post(r"/incidents/{incident_id:\d+}/rvr/not-safe", name="rvr_not_safe")
@requires(*RVR_ROLES)
async def not_safe(request: web.Request) -> web.StreamResponse:
    """Caller not safe: the video ends at once (every live call of the incident), then the
    incident is flagged for an emergency call-back."""
    incident_id = int(request.match_info["incident_id"])
    settings = request.app[keys.SETTINGS]
    ended: list[Call] = []

    def work(session: Session, incident: Incident, form: MultiDictProxy[Any]) -> str:
        user = current_user(request)
        ended.extend(track.not_safe(session, settings, actor_of(request), user, incident))
        return "Video ended. Flagged for an emergency call-back."

    try:
        return await _act(request, incident_id, work, then="?notice=not_safe")
    finally:
        for call in ended:  # the hub hangs up only what the database has ended
            await request.app[keys.HUB].hang_up(call.public_id, life.NOT_SAFE)


@routes.post(r"/incidents/{incident_id:\d+}/dash", name="rvr_dash")
@requires(*RVR_ROLES)
async def dash_checklist(request: web.Request) -> web.StreamResponse:
    settings = request.app[keys.SETTINGS]

    def work(session: Session, incident: Incident, form: MultiDictProxy[Any]) -> str:
        questions = dash.questions_for(settings)
        assessment = dash.record(
            session,
            actor_of(request),
            current_user(request),
            incident,
            questions,
            {q.id: str(form.get(q.id, "")) for q in questions.items},
            {q.id: str(form.get(f"{q.id}_note", "")) for q in questions.items},
            str(form.get("risk_level", "")),
            settings.dash_marac_yes_count,
        )
        marac = " MARAC referral flagged." if assessment.marac_referral else ""
        return f"DASH recorded: {assessment.yes_count} yes, risk {assessment.risk_level}.{marac}"

    return await _act(request, int(request.match_info["incident_id"]), work)


@routes.post(r"/incidents/{incident_id:\d+}/disclosures", name="rvr_disclosure")
@requires(*RVR_ROLES)
async def disclosure(request: web.Request) -> web.StreamResponse:
    def work(session: Session, incident: Incident, form: MultiDictProxy[Any]) -> str:
        record = track.record_disclosure(
            session,
            actor_of(request),
            current_user(request),
            incident,
            str(form.get("kind", "")),
            str(form.get("subject", "")),
            str(form.get("notes", "")),
        )
        return f"Recorded: {DISCLOSURE_KINDS[record.kind]}."

    return await _act(request, int(request.match_info["incident_id"]), work)
