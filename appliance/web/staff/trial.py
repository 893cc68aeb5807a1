"""The randomised trial: the supervisors' switch, and its steps on one incident."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from appliance import dates
from appliance.models import USUAL_ARM, Incident, Role
from appliance.services.evaluation import survey, trial
from appliance.services.evaluation.trial import TrialError
from appliance.web import keys
from appliance.web.access import current_user, requires
from appliance.web.toolkit import STAFF, actor_of, incident_for

routes = web.RouteTableDef()


def _trial_page(request: web.Request, error: str = "", status: int = 200) -> web.Response:
    with request.app[keys.DB].session() as session:
        running = trial.active(session)
        history = trial.trials(session)
        blocks = {t.id: trial.audit_blocks(session, t) for t in history}
    return aiohttp_jinja2.render_template(
        "trial/control.html",
        request,
        {"running": running, "history": history, "blocks": blocks, "error": error},
        status=status,
    )


@routes.get("/evaluation/trial", name="trial_control")
@requires(Role.SUPERVISOR)
async def trial_control(request: web.Request) -> web.StreamResponse:
    return _trial_page(request)


@routes.post("/evaluation/trial", name="trial_switch")
@requires(Role.SUPERVISOR)
async def trial_switch(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    action = form.get("action")
    raw_seed = str(form.get("seed", "")).strip()
    error = ""
    try:
        seed = int(raw_seed) if raw_seed else None
    except ValueError:
        return _trial_page(request, "Not started: the seed is a whole number.", 400)
    try:
        with request.app[keys.DB].session() as session:
            if action == "start":
                trial.start(
                    session,
                    actor_of(request),
                    current_user(request),
                    request.app[keys.SETTINGS],
                    seed,
                )
            elif action == "stop":
                trial.stop(session, actor_of(request), current_user(request))
            else:
                error = "choose start or stop"
    except TrialError as exc:
        error = str(exc)
    if error:
        return _trial_page(request, f"Not done: {error}.", 409)
    raise web.HTTPSeeOther("/evaluation/trial")


def _incident_page(
    request: web.Request,
    incident_id: int,
    error: str = "",
    status: int = 200,
    visit_at: str = "",
    ask_clocks: bool = False,
) -> web.Response:
    settings = request.app[keys.SETTINGS]
    with request.app[keys.DB].session() as session:
        incident = incident_for(request, session, incident_id)
        allocation = trial.allocation_of(session, incident)
        running = trial.active(session)
        context: dict[str, Any] = {
            "incident": incident,
            "allocation": allocation,
            "running": running,
            "outcomes": settings.outcome_codes,
            "error": error,
            "visit_at": visit_at,
            "ask_clocks": ask_clocks,
        }
    return aiohttp_jinja2.render_template("trial/incident.html", request, context, status=status)


@routes.get(r"/incidents/{incident_id:\d+}/trial", name="incident_trial")
@requires(*STAFF)
async def incident_trial(request: web.Request) -> web.StreamResponse:
    return _incident_page(request, int(request.match_info["incident_id"]))


def _parse_visit_time(raw: str, clocks: str) -> datetime | None:
    """A ``datetime-local`` value, typed as UK time (the form says so), as UTC."""
    if not raw.strip():
        return None
    try:
        typed = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise TrialError("give the visit's date and time, e.g. 2026-11-26T14:30") from None
    return dates.uk_wall_clock("the visit's time", typed, clocks)


@routes.post(r"/incidents/{incident_id:\d+}/trial", name="incident_trial_step")
@requires(*STAFF)
async def incident_trial_step(request: web.Request) -> web.StreamResponse:
    incident_id = int(request.match_info["incident_id"])
    form = await request.post()
    step = form.get("step")
    error = ""
    visit_at, ask_clocks = str(form.get("at", "")), False
    try:
        with request.app[keys.DB].session() as session:
            incident: Incident = incident_for(request, session, incident_id)
            user = current_user(request)
            if step == "consent":
                answer = form.get("consented")
                if answer not in ("yes", "no"):
                    raise TrialError("say whether the caller agreed to take part")
                trial.record_consent(session, actor_of(request), user, incident, answer == "yes")
            elif step == "reveal":
                trial.reveal(session, actor_of(request), user, incident)
            elif step == "in_person":
                allocation = trial.record_in_person(
                    session,
                    actor_of(request),
                    user,
                    incident,
                    request.app[keys.SETTINGS],
                    str(form.get("outcome", "")),
                    _parse_visit_time(visit_at, str(form.get("clocks", ""))),
                )
                if allocation.arm == USUAL_ARM:
                    survey.offer_by_sms(session, request.app[keys.SETTINGS], incident)
            else:
                error = "unknown step"
    except dates.AmbiguousTime as exc:
        error, ask_clocks = str(exc), True
    except (TrialError, dates.DateOutOfRange) as exc:
        error = str(exc)
    if error:
        return _incident_page(
            request, incident_id, f"Not saved: {error}.", 409, visit_at, ask_clocks
        )
    raise web.HTTPSeeOther(f"/incidents/{incident_id}/trial")
