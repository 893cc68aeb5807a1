"""Incidents for handlers: list, create, one incident with its calls and video invites."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from appliance import i18n
from appliance.models import Role, UploadedItem
from appliance.services.calls import invites, life, states
from appliance.services.calls.states import CallError
from appliance.services.evaluation import trial
from appliance.services.evidence import sealing
from appliance.services.governance import audit_search
from appliance.services.intake import incidents, uploads
from appliance.services.intake.incidents import Filters, IncidentError
from appliance.services.outbox import messages
from appliance.services.outbox.messages import MessageError
from appliance.services.rvr import track
from appliance.web import keys
from appliance.web.access import current_roles, current_user, requires
from appliance.web.files import stream_file
from appliance.web.toolkit import (
    STAFF,
    actor_of,
    incident_for,
    remember_link,
    render_incident,
    shown_link,
)

routes = web.RouteTableDef()
RVR_QUEUED = (
    "Made. This is Rapid Video Response work: it waits on the RVR queue for an RVR officer."
)


PAGE_SIZE = 50


def _filters(request: web.Request) -> Filters:
    query = request.query
    grade = query.get("grade", "")
    may_see_rvr = {Role.RVR_OFFICER, Role.SUPERVISOR} & set(current_roles(request))
    return Filters(
        status=query.get("status") or None,
        grade=int(grade) if grade.isdigit() else None,
        category=query.get("category") or None,
        text=query.get("q") or None,
        unowned=query.get("unowned") == "1",
        hidden_categories=() if may_see_rvr else tuple(request.app[keys.SETTINGS].rvr_categories),
    )


def _render_list(
    request: web.Request, error: str = "", form: dict | None = None, status: int = 200
) -> web.Response:
    filters = _filters(request)
    number = request.query.get("page", "1")
    with request.app[keys.DB].reader() as session:
        page = incidents.page_of(
            session,
            filters,
            current_user(request),
            current_roles(request),
            int(number) if number.isdigit() else 1,
            PAGE_SIZE,
        )
    kept = {k: v for k, v in request.query.items() if k not in ("page", "notice") and v}
    return aiohttp_jinja2.render_template(
        "incidents/list.html",
        request,
        {
            "incidents": page.rows,
            "page": page,
            "page_query": urlencode(kept),
            "filters": filters,
            "me": current_user(request).id,
            "categories": request.app[keys.SETTINGS].incident_categories,
            "error": error,
            "notice": RVR_QUEUED if request.query.get("notice") == "rvr_queued" else "",
            "form": form or {},
            "open_form": bool(error) or request.query.get("new") == "1",
        },
        status=status,
    )


@routes.get("/incidents", name="incidents")
@requires(*STAFF)
async def incident_list(request: web.Request) -> web.StreamResponse:
    return _render_list(request)


@routes.post("/incidents", name="incidents_create")
@requires(*STAFF)
async def incident_create(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    fields = {
        k: str(form.get(k, ""))
        for k in (
            "cad_reference",
            "grade",
            "category",
            "caller_name",
            "caller_phone",
            "summary",
            "location_text",
        )
    }
    settings = request.app[keys.SETTINGS]
    may_work_rvr = bool({Role.RVR_OFFICER, Role.SUPERVISOR} & set(current_roles(request)))
    try:
        grade = int(fields["grade"] or 3)
        with request.app[keys.DB].session() as session:
            incident = incidents.create(
                session,
                actor_of(request),
                current_user(request),
                cad_reference=fields["cad_reference"],
                grade=grade,
                category=fields["category"],
                caller_name=fields["caller_name"],
                caller_phone=fields["caller_phone"],
                summary=fields["summary"],
                location_text=fields["location_text"],
                categories=settings.incident_categories,
                keep=may_work_rvr or fields["category"].strip() not in settings.rvr_categories,
            )
            kept = incident.owner_id is not None
    except (IncidentError, ValueError) as exc:
        return _render_list(request, f"Not created: {exc}.", fields, status=400)
    if not kept:  # RVR work made by a handler without the role: on the RVR queue now
        raise web.HTTPSeeOther("/incidents?notice=rvr_queued")
    raise web.HTTPSeeOther(f"/incidents/{incident.id}")


@routes.get(r"/incidents/{incident_id:\d+}", name="incident")
@requires(*STAFF)
async def incident_page(request: web.Request) -> web.StreamResponse:
    """The incident, and who looked at it (audited once shown)."""
    incident_id = int(request.match_info["incident_id"])
    link, kind = shown_link(request, incident_id)
    response = render_incident(request, incident_id, link=link, link_kind=kind)
    with request.app[keys.DB].session() as session:
        audit_search.viewed(session, actor_of(request), "incident", incident_id)
    return response


@routes.post(r"/incidents/{incident_id:\d+}/invites", name="incident_invite")
@requires(*STAFF)
async def invite(request: web.Request) -> web.StreamResponse:
    incident_id = int(request.match_info["incident_id"])
    settings = request.app[keys.SETTINGS]
    form = await request.post()
    by_sms = form.get("channel") == "sms"
    kind = str(form.get("kind", invites.VIDEO))
    if kind not in invites.INVITE_KINDS:
        return render_incident(request, incident_id, error="Not sent: unknown invite.", status=400)
    language = str(form.get("language") or settings.caller_language_default)
    if language not in i18n.OFFERED:
        return render_incident(
            request, incident_id, error="Not sent: that language is not offered.", status=400
        )
    refusal, status, link = "", 400, ""
    with request.app[keys.DB].session() as session:
        incident = incident_for(request, session, incident_id)
        if track.is_rvr(settings, incident):
            refusal = "this is Rapid Video Response work: ask the safety questions and use "
            refusal += "Transfer now on its RVR page (neutral wording, a short-lived link)"
            status = 409
        elif incident.eligibility != "eligible":
            refusal = "complete the eligibility checklist first: a video invite needs every "
            refusal += "answer yes"
            status = 409
        elif kind == invites.VIDEO and (held := trial.video_refusal(session, incident)):
            refusal, status = held, 409
        elif kind == invites.VIDEO and (in_use := life.link_in_use(session, incident_id)):
            refusal = f"the caller is already using the video link of call {in_use.public_id}: "
            refusal += "revoke it first if they need a new one (never two live links)"
            status = 409
        elif by_sms:
            try:
                call, _, _ = invites.create_sms_invite(
                    session,
                    actor_of(request),
                    incident,
                    current_user(request),
                    settings,
                    safe_to_contact=form.get("safe_to_contact") == "yes",
                    kind=kind,
                    language=language,
                )
                if kind == invites.VIDEO:
                    life.replace_unused_links(
                        session, settings, actor_of(request), incident_id, call
                    )
            except (CallError, MessageError) as exc:
                refusal = str(exc)
        else:
            _, call, token = invites.create_invite(
                session,
                actor_of(request),
                incident,
                current_user(request),
                timedelta(hours=settings.invite_ttl_hours),
                kind=kind,
                language=language,
            )
            link = invites.link_for(settings, token)
            if kind == invites.VIDEO:
                life.replace_unused_links(session, settings, actor_of(request), incident_id, call)
    # Rendered after the session closes: SQLite allows one writer, and that was us.
    if refusal:
        return render_incident(request, incident_id, error=f"Not sent: {refusal}.", status=status)
    if not by_sms:
        remember_link(request, incident_id, link, kind)
        raise web.HTTPSeeOther(f"/incidents/{incident_id}")  # the link sits under the header
    raise web.HTTPSeeOther(f"/incidents/{incident_id}?notice=sms_queued")


@routes.get(r"/incidents/{incident_id:\d+}/uploads/{item_id:\d+}", name="incident_upload")
@requires(*STAFF)
async def upload_file(request: web.Request) -> web.StreamResponse:
    """An uploaded photo or video, for staff who may act on the incident (audited)."""
    incident_id = int(request.match_info["incident_id"])
    with request.app[keys.DB].session() as session:
        incident_for(request, session, incident_id)
        item = session.get(UploadedItem, int(request.match_info["item_id"]))
        if item is None or item.incident_id != incident_id:
            raise web.HTTPNotFound(text="There is no such upload on this incident.")
        uploads.opened_by_staff(session, actor_of(request), item)
        file = sealing.file_at(session, request.app[keys.KEYRING], item.path)
        if file is None:
            raise web.HTTPNotFound(text="There is no such upload on this incident.")
    return await stream_file(request, file, inline=request.query.get("view") == "1")


@routes.post(
    r"/incidents/{incident_id:\d+}/messages/{message_id:\d+}/resend", name="incident_resend"
)
@requires(*STAFF)
async def resend(request: web.Request) -> web.StreamResponse:
    incident_id = int(request.match_info["incident_id"])
    try:
        with request.app[keys.DB].session() as session:
            incident_for(request, session, incident_id)
            message = messages.get(session, int(request.match_info["message_id"]))
            if message is None or message.incident_id != incident_id:
                raise web.HTTPNotFound(text="There is no such message on this incident.")
            messages.resend(session, request.app[keys.SETTINGS], actor_of(request), message)
    except MessageError as exc:
        return render_incident(request, incident_id, error=f"Not resent: {exc}.", status=409)
    raise web.HTTPSeeOther(f"/incidents/{incident_id}?notice=sms_queued")


@routes.post(r"/incidents/{incident_id:\d+}/take", name="incident_take")
@requires(Role.HANDLER)
async def take(request: web.Request) -> web.StreamResponse:
    incident_id = int(request.match_info["incident_id"])
    try:
        with request.app[keys.DB].session() as session:
            incident = incident_for(request, session, incident_id, act=False)
            incidents.take(
                session,
                request.app[keys.SETTINGS],
                actor_of(request),
                current_user(request),
                incident,
            )
    except IncidentError as exc:
        return render_incident(request, incident_id, error=f"Not taken: {exc}.", status=409)
    raise web.HTTPSeeOther(f"/incidents/{incident_id}")


@routes.post(r"/incidents/{incident_id:\d+}/eligibility", name="incident_eligibility")
@requires(*STAFF)
async def eligibility(request: web.Request) -> web.StreamResponse:
    incident_id = int(request.match_info["incident_id"])
    form = await request.post()
    questions = request.app[keys.SETTINGS].eligibility_questions
    answers = [
        {"yes": True, "no": False}.get(str(form.get(f"q{n}", ""))) for n in range(len(questions))
    ]
    try:
        with request.app[keys.DB].session() as session:
            incident = incident_for(request, session, incident_id)
            incidents.record_eligibility(
                session,
                actor_of(request),
                current_user(request),
                incident,
                questions,
                answers,
                str(form.get("reason", "")),
                settings=request.app[keys.SETTINGS],
            )
    except IncidentError as exc:
        return render_incident(request, incident_id, error=f"Not recorded: {exc}.", status=400)
    raise web.HTTPSeeOther(f"/incidents/{incident_id}")


@routes.post("/calls/{public_id}/revoke", name="call_revoke")
@requires(*STAFF)
async def revoke(request: web.Request) -> web.StreamResponse:
    with request.app[keys.DB].session() as session:
        call = states.by_public_id(session, request.match_info["public_id"])
        if call is None:
            raise web.HTTPNotFound()
        incident_for(request, session, call.incident_id)
        life.revoke(session, request.app[keys.SETTINGS], actor_of(request), call)
        withdrawn = [call.public_id, *(c.public_id for c in life.later_on_link(session, call))]
    for public_id in withdrawn:
        await request.app[keys.HUB].hang_up(public_id, life.REVOKED)
    raise web.HTTPSeeOther(f"/incidents/{call.incident_id}")
