"""The handler's side of a call: the queue of waiting callers, the call console, snapshots."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlmodel import Session

from appliance.live.participants import HANDLER, Participant
from appliance.live.protocol import SignallingSocket
from appliance.models import (
    DISCLOSURE_KINDS,
    GUEST_ROLES,
    RISK_LEVELS,
    THRIVE_PARTS,
    THRIVE_RATINGS,
    Call,
    Incident,
    Snapshot,
)
from appliance.services.audit import Actor
from appliance.services.calls import guests, life, states
from appliance.services.calls.states import CallError
from appliance.services.evidence import custody, sealing
from appliance.services.evidence.captures import EvidenceError
from appliance.services.intake import incidents
from appliance.services.intake import queue as intake_queue
from appliance.services.record import officer, statements
from appliance.services.rvr import dash, track
from appliance.web import keys
from appliance.web.access import (
    current_roles,
    current_user,
    grants,
    require_same_origin,
    requires,
    source_of,
)
from appliance.web.toolkit import STAFF, call_for, staff_recheck, stream_file

routes = web.RouteTableDef()
HANDLER_ENDED = "handler_ended"


@routes.get("/calls", name="queue")
@requires(*STAFF)
async def queue(request: web.Request) -> web.StreamResponse:
    return aiohttp_jinja2.render_template("calls/queue.html", request, {})


@routes.get("/calls/waiting.json", name="queue_json")
@requires(*STAFF)
async def queue_json(request: web.Request) -> web.StreamResponse:
    """Callers waiting on the incidents this user may see, most urgent first: RVR, then
    past the response target, then grade, then the longest wait. Every staff page asks
    for it (the count in the menu and the title)."""
    settings = request.app[keys.SETTINGS]
    user, roles = current_user(request), current_roles(request)
    # The few calls waiting, then their incidents: cheaper than every visible incident (the
    # staff pages ask every five seconds), and none missed past the incident list's limit.
    waiting: list[tuple[Call, Incident]] = []
    with request.app[keys.DB].reader() as session:
        for call in states.all_waiting(session):
            incident = session.get(Incident, call.incident_id)
            if incident is not None and incidents.may_see(user, roles, incident):
                waiting.append((call, incident))
    hub = request.app[keys.HUB]
    now = datetime.now(UTC)
    rows: list[tuple[tuple[bool, bool, int, datetime], dict[str, Any]]] = []
    for call, incident in waiting:
        rvr = track.is_rvr(settings, incident)
        overdue = incident.received_at + intake_queue.target_for(settings, incident) < now
        order = (not rvr, not overdue, incident.grade, call.waiting_at or now)
        row = {
            "call": call.public_id,
            "incident": incident.cad_reference,
            "name": incident.caller_name,
            "grade": incident.grade,
            "category": incident.category,
            "rvr": rvr,
            "overdue": overdue,
            "waitingSince": call.waiting_at.isoformat() if call.waiting_at else None,
            "present": "caller" in getattr(hub.calls.get(call.public_id), "participants", {}),
            "url": f"/calls/{call.public_id}",
        }
        rows.append((order, row))
    rows.sort(key=lambda pair: pair[0])
    return web.json_response({"waiting": [row for _, row in rows]})


@routes.get("/calls/{public_id}", name="console")
@requires(*STAFF)
@grants("camera", "microphone")
async def console(request: web.Request) -> web.StreamResponse:
    shown = request.app[keys.SETTINGS].console_chat_shown
    before = request.query.get("chat_before", "")
    chat_before = int(before) if before.isdigit() and len(before) < 18 else None
    with request.app[keys.DB].reader() as session:
        call, incident = call_for(request, session)
        chat = states.chat_of(session, call, limit=shown, before=chat_before)
        earlier = bool(chat) and states.chat_count(session, call, before=chat[0].id) > 0
        snapshots = states.snapshots_of(session, call)
        thrive = officer.thrive_history(session, incident)
        statement = statements.latest(session, incident)
        invited_guests = guests.active(session, call)
        rvr_context = _rvr_context(session, request.app[keys.SETTINGS], incident)
    settings = request.app[keys.SETTINGS]
    return aiohttp_jinja2.render_template(
        "calls/console.html",
        request,
        {
            "call": call,
            "incident": incident,
            "chat": chat,
            "chat_earlier": chat[0].id if earlier else None,
            "snapshots": snapshots,
            "thrive": thrive,
            "thrive_parts": THRIVE_PARTS,
            "thrive_ratings": THRIVE_RATINGS,
            "statement": statement,
            "declaration": settings.statement_declaration,
            "outcomes": settings.outcome_codes,
            "chat_presets": settings.chat_presets,
            "guest_roles": GUEST_ROLES if settings.guests_enabled else {},
            "guests": invited_guests,
            **rvr_context,
        },
    )


@routes.get("/ws/calls/{public_id}", name="console_ws")
@requires(*STAFF)
async def console_socket(request: web.Request) -> web.StreamResponse:
    require_same_origin(request)
    with request.app[keys.DB].session() as session:
        call, _ = call_for(request, session)
    ws = SignallingSocket()
    await ws.prepare(request)
    participant = Participant(
        HANDLER,
        ws,
        source_of(request),
        current_user(request),
        recheck=staff_recheck(request, call.incident_id),
    )
    await request.app[keys.HUB].serve(call.public_id, participant)
    return ws


@routes.post("/calls/{public_id}/snapshots", name="snapshot_take")
@requires(*STAFF)
async def take_snapshot(request: web.Request) -> web.StreamResponse:
    with request.app[keys.DB].session() as session:
        call, _ = call_for(request, session)
    try:
        snapshot = await request.app[keys.HUB].snapshot(
            call.public_id, current_user(request), source_of(request)
        )
    except (CallError, EvidenceError) as exc:
        return web.json_response({"error": str(exc)}, status=409)
    return web.json_response(
        {
            "id": snapshot.id,
            "sha256": snapshot.sha256,
            "width": snapshot.width,
            "height": snapshot.height,
        }
    )


@routes.get("/calls/{public_id}/snapshots/{snapshot_id:\\d+}", name="snapshot")
@requires(*STAFF)
async def snapshot_file(request: web.Request) -> web.StreamResponse:
    """A snapshot, decrypted for the handler's page (audited as a view)."""
    keyring = request.app[keys.KEYRING]
    with request.app[keys.DB].session() as session:
        call, _ = call_for(request, session)
        snapshot = session.get(Snapshot, int(request.match_info["snapshot_id"]))
        if snapshot is None or snapshot.call_id != call.id:
            raise web.HTTPNotFound()
        file = sealing.file_at(session, keyring, snapshot.path)
        if file is None:
            raise web.HTTPNotFound()
        custody.accessed(
            session, Actor(current_user(request).username, source_of(request)), "viewed", file
        )
    return await stream_file(request, file)


@routes.post("/calls/{public_id}/end", name="call_end")
@requires(*STAFF)
async def end_call(request: web.Request) -> web.StreamResponse:
    actor = Actor(current_user(request).username, source_of(request))
    with request.app[keys.DB].session() as session:
        call, incident = call_for(request, session)
        life.end(session, request.app[keys.SETTINGS], call, actor, HANDLER_ENDED)
    await request.app[keys.HUB].hang_up(call.public_id, HANDLER_ENDED)
    raise web.HTTPSeeOther(f"/incidents/{incident.id}")


def _rvr_context(session: Session, settings: Any, incident: Incident) -> dict[str, Any]:
    """What the call console shows for an RVR call (empty for other calls)."""
    if not track.is_rvr(settings, incident):
        return {}
    return {
        "rvr_case": track.case_of(session, incident),
        "dash_questions": dash.questions_for(settings),
        "dash_latest": dash.latest(session, incident),
        "risk_levels": RISK_LEVELS,
        "disclosure_kinds": DISCLOSURE_KINDS,
    }
