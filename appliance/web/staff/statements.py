"""The officer's side of the witness statement: save, send to the caller, new version, PDF.

The caller's side (read, ask for changes, sign) is in caller_statement.py. Both sides
tell the live call, so the other page updates without a reload.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiDictProxy
from sqlmodel import Session

from appliance.models import Call, Incident, Role, Statement
from appliance.services import audit
from appliance.services.calls import states
from appliance.services.evidence import custody, sealing
from appliance.services.intake.incidents import IncidentError
from appliance.services.record import statements
from appliance.services.record.statements import StatementError, Witness
from appliance.web import keys
from appliance.web.access import current_roles, current_user, requires
from appliance.web.files import stream_file
from appliance.web.statement_views import caller_safe, officer_view
from appliance.web.toolkit import STAFF, act_on_form, actor_of

routes = web.RouteTableDef()


def _live_call(session: Session, form: MultiDictProxy[Any], incident: Incident):
    public_id = str(form.get("call", ""))
    call = states.by_public_id(session, public_id) if public_id else None
    if public_id and (call is None or call.incident_id != incident.id):
        raise IncidentError("that call is not part of this incident")
    return call


def _save(
    request: web.Request,
    session: Session,
    incident: Incident,
    form: MultiDictProxy[Any],
    call: Call | None,
) -> Statement:
    return statements.save(
        session,
        actor_of(request),
        current_user(request),
        incident,
        Witness.clean(
            str(form.get("witness_name", "")),
            str(form.get("witness_age", "")),
            str(form.get("witness_occupation", "")),
            str(form.get("account", "")),
        ),
        request.app[keys.SETTINGS].statement_declaration,
        call,
    )


@routes.post(r"/incidents/{incident_id:\d+}/statement", name="statement_save")
@requires(*STAFF)
async def save(request: web.Request) -> web.StreamResponse:
    def work(session: Session, incident: Incident, form: MultiDictProxy[Any]) -> dict[str, Any]:
        statement = _save(request, session, incident, form, _live_call(session, form, incident))
        pushed.update(statement=officer_view(statement), call=statement.call_id)
        return {
            "message": f"Statement version {statement.version} saved as a draft.",
            "statement": pushed["statement"],
        }

    pushed: dict[str, Any] = {}
    response = await act_on_form(request, work)
    await _tell_caller(request, pushed)
    return response


@routes.post(r"/incidents/{incident_id:\d+}/statement/send", name="statement_send")
@requires(*STAFF)
async def send(request: web.Request) -> web.StreamResponse:
    def work(session: Session, incident: Incident, form: MultiDictProxy[Any]) -> dict[str, Any]:
        call = _live_call(session, form, incident)
        if call is None:
            raise StatementError("send the statement from the call with the caller")
        if "account" in form:  # the form's text is saved first: what is sent is what is shown
            _save(request, session, incident, form, call)
        statement = statements.send(session, actor_of(request), incident, call)
        pushed.update(statement=officer_view(statement), call=call.id)
        return {
            "message": f"Version {statement.version} is on the caller's phone to read and sign.",
            "statement": pushed["statement"],
        }

    pushed: dict[str, Any] = {}
    response = await act_on_form(request, work)
    await _tell_caller(request, pushed)
    return response


@routes.post(r"/incidents/{incident_id:\d+}/statement/new-version", name="statement_new")
@requires(*STAFF)
async def new_version(request: web.Request) -> web.StreamResponse:
    def work(session: Session, incident: Incident, form: MultiDictProxy[Any]) -> dict[str, Any]:
        statement = statements.new_version(
            session, actor_of(request), current_user(request), incident
        )
        return {
            "message": f"Version {statement.version} started; the signed one stays as it was.",
            "statement": officer_view(statement),
        }

    return await act_on_form(request, work)


async def _tell_caller(request: web.Request, pushed: dict[str, Any]) -> None:
    """Show the caller what changed (a draft being edited hides the text to sign)."""
    if not pushed.get("call"):
        return
    with request.app[keys.DB].session() as session:
        call = session.get(Call, pushed["call"])
        public_id = call.public_id if call else None
    if public_id:
        view = pushed["statement"]
        await request.app[keys.HUB].notify(
            public_id, {"type": "statement", "statement": caller_safe(view)}
        )


@routes.get(r"/incidents/{incident_id:\d+}/statements/{statement_id:\d+}.pdf", name="statement_pdf")
@requires(Role.HANDLER, Role.SUPERVISOR, Role.EVIDENCE_OFFICER)
async def pdf(request: web.Request) -> web.StreamResponse:
    """The signed statement is evidence: the custody rules decide who may have it (the
    incident's own handler, supervisors, evidence officers), and a refusal is audited."""
    incident_id = int(request.match_info["incident_id"])
    statement_id = int(request.match_info["statement_id"])
    with request.app[keys.DB].session() as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise web.HTTPNotFound(text="There is no incident with that reference.")
        allowed = custody.may_view(current_user(request), current_roles(request), incident)
        if not allowed:
            custody.refused(session, actor_of(request), "statement", statement_id)
    if not allowed:
        raise web.HTTPForbidden(text="This signed statement is not yours to see.")
    with request.app[keys.DB].session() as session:
        statement = session.get(Statement, statement_id)
        if statement is None or statement.incident_id != incident.id or not statement.pdf_path:
            raise web.HTTPNotFound(text="There is no signed statement with that number.")
        audit.record(
            session,
            actor_of(request),
            "statement.downloaded",
            object_type="incident",
            object_id=incident.cad_reference,
            detail={"statement": statement.id, "version": statement.version},
        )
        file = sealing.file_at(session, request.app[keys.KEYRING], statement.pdf_path)
        if file is None:
            raise web.HTTPNotFound(text="The signed statement's file is not kept on this box.")
    return await stream_file(request, file)
