"""The handler's side of a call: the queue of waiting callers, the call console, snapshots
(captions and marked-up copies), and the officer's drafts typed on the console."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlmodel import Session

from appliance import grid, i18n
from appliance.live.participants import HANDLER, OBSERVER, Participant
from appliance.live.protocol import SignallingSocket
from appliance.models import (
    DISCLOSURE_KINDS,
    GUEST_ROLES,
    RISK_LEVELS,
    THRIVE_PARTS,
    THRIVE_RATINGS,
    Call,
    Incident,
    Invite,
    Role,
    Snapshot,
    User,
)
from appliance.services.audit import Actor
from appliance.services.calls import guests, handover, life, states, supervision, viewers
from appliance.services.calls.states import CallError
from appliance.services.calls.supervision import Seat, SupervisionError
from appliance.services.evidence import custody, markup, sealing
from appliance.services.evidence.captures import EvidenceError
from appliance.services.intake import incidents, locations
from appliance.services.intake import queue as intake_queue
from appliance.services.record import drafts, officer, statements
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
from appliance.web.files import stream_file
from appliance.web.toolkit import STAFF, actor_of, call_for, staff_recheck, uk_time

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
            # By the box's clock, for the timer against the wait target (wait-timer.js).
            "waited": round((now - call.waiting_at).total_seconds()) if call.waiting_at else 0,
            "present": "caller" in getattr(hub.calls.get(call.public_id), "participants", {}),
            # Whose alert it is (waiting.js): the owner's own, or anyone's on the board.
            "mine": incident.owner_id == user.id,
            "unassigned": incident.owner_id is None,
            "url": f"/calls/{call.public_id}",
        }
        rows.append((order, row))
    rows.sort(key=lambda pair: pair[0])
    with request.app[keys.DB].reader() as session:
        offered = handover.offered_to(session, settings, user, roles)
    handovers = [
        {
            "id": o.handover.id,
            "call": o.call.public_id,
            "incident": o.incident.cad_reference,
            "state": o.call.state,
            "from": o.from_name,
            "note": o.handover.note,
            "toYou": o.handover.to_user_id == user.id,
            "accept": f"/handovers/{o.handover.id}/accept",
        }
        for o in offered
    ]
    return web.json_response(
        {
            "waiting": [row for _, row in rows],
            "handovers": handovers,
            "targetSeconds": settings.queue_target_seconds,
        }
    )


@routes.post("/calls/{public_id}/alerted", name="call_alerted")
@requires(*STAFF)
async def call_alerted(request: web.Request) -> web.StreamResponse:
    """A staff page announced this waiting caller (waiting.js) with a desktop notification
    or the chime alone: which one, for the answer-wait metric. Only the hub's note in
    memory is kept; a call this user may not see is refused like its console."""
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="Send JSON.") from None
    notification = body.get("notification") if isinstance(body, dict) else None
    if notification not in ("desktop", "sound"):
        raise web.HTTPBadRequest(text="notification is desktop or sound.")
    with request.app[keys.DB].reader() as session:
        call, _ = call_for(request, session)
    hub = request.app[keys.HUB]
    hub.alerts.note(call.public_id, notification, hub.calls)
    return web.Response(status=204)


@routes.get("/calls/{public_id}", name="console")
@requires(*STAFF)
@grants("camera", "microphone")
async def console(request: web.Request) -> web.StreamResponse:
    shown = request.app[keys.SETTINGS].console_chat_shown
    before = request.query.get("chat_before", "")
    chat_before = int(before) if before.isdigit() and len(before) < 18 else None
    console_user = request.app[keys.HUB].handlers.console_user(request.match_info["public_id"])
    with request.app[keys.DB].reader() as session:
        call, incident = call_for(request, session)
        user, roles = current_user(request), current_roles(request)
        mode, holder = _mode(session, call, user, roles, console_user)
        chat = states.chat_of(session, call, limit=shown, before=chat_before)
        earlier = bool(chat) and states.chat_count(session, call, before=chat[0].id) > 0
        snapshots = states.snapshots_of(session, call)
        thrive = officer.thrive_history(session, incident)
        statement = statements.latest(session, incident)
        invited_guests = guests.active(session, call)
        viewer_links = viewers.active(session, call)
        rvr_context = _rvr_context(session, request.app[keys.SETTINGS], incident)
        place = _location(session, call)
        own_drafts = drafts.of(session, current_user(request), incident.id or 0)
        settings = request.app[keys.SETTINGS]
        colleagues = handover.colleagues(session, settings, incident, current_user(request))
        invite = session.get(Invite, call.invite_id)
    place_grid = (
        await asyncio.to_thread(grid.reference, place["lat"], place["lon"]) if place else None
    )
    return aiohttp_jinja2.render_template(
        "calls/console.html",
        request,
        {
            "call": call,
            "incident": incident,
            "mode": mode,
            "holder": holder,
            "supervisor": supervision.supervises(current_roles(request)),
            "colleagues": colleagues,
            "caller_language": i18n.language(invite.language if invite else None),
            "chat": chat,
            "chat_earlier": chat[0].id if earlier else None,
            "snapshots": _in_order(snapshots),
            "snapshot_labels": _labels(snapshots),
            "place": place,
            "wait_target": settings.queue_target_seconds,
            "waited": round((datetime.now(UTC) - call.waiting_at).total_seconds())
            if call.waiting_at and call.state == "waiting"
            else 0,
            "place_grid": place_grid,
            "map_url": _map_url(settings.force_map_url, place),
            "map_template": settings.force_map_url,
            "drafts": own_drafts,
            "thrive": thrive,
            "thrive_parts": THRIVE_PARTS,
            "thrive_ratings": THRIVE_RATINGS,
            "statement": statement,
            "declaration": settings.statement_declaration,
            "outcomes": settings.outcome_codes,
            "chat_presets": settings.chat_presets,
            "guest_roles": GUEST_ROLES if settings.guests_enabled else {},
            "guests": invited_guests,
            "viewer_links": viewer_links,
            **rvr_context,
        },
    )


@routes.get("/ws/calls/{public_id}", name="console_ws")
@requires(*STAFF)
async def console_socket(request: web.Request) -> web.StreamResponse:
    """The handler's socket, or a supervisor's receive-only one on a call another
    officer holds (``supervision.seat``); anyone else on a held call is refused."""
    require_same_origin(request)
    user, roles = current_user(request), current_roles(request)
    hub = request.app[keys.HUB]
    console_user = hub.handlers.console_user(request.match_info["public_id"])
    try:
        with request.app[keys.DB].session() as session:
            call, _ = call_for(request, session)
            seat = supervision.seat(call, user, roles, console_user)
            if seat is Seat.OBSERVE:
                supervision.observe(session, actor_of(request), user, roles, call)
    except SupervisionError as exc:
        raise web.HTTPConflict(text=str(exc)) from None
    ws = SignallingSocket()
    await ws.prepare(request)
    participant = Participant(
        OBSERVER if seat is Seat.OBSERVE else HANDLER,
        ws,
        source_of(request),
        user,
        recheck=staff_recheck(request, call.incident_id),
    )
    await request.app[keys.HUB].serve(call.public_id, participant)
    return ws


@routes.post("/calls/{public_id}/take-over", name="call_take_over")
@requires(Role.SUPERVISOR)
async def take_over(request: web.Request) -> web.StreamResponse:
    """A supervisor takes the call, saying why: the handler's console is told and goes
    read-only; the supervisor's page then reloads as the handler's console."""
    form = await request.post()
    user = current_user(request)
    reason = " ".join(str(form.get("reason", "")).split())[: supervision.MAX_REASON]
    try:
        with request.app[keys.DB].session() as session:
            call, _ = call_for(request, session)
            supervision.take_over(
                session, actor_of(request), user, current_roles(request), call, reason
            )
    except SupervisionError as exc:
        return web.json_response({"error": str(exc)}, status=409)
    await request.app[keys.HUB].handlers.take_over(call.public_id, user, reason)
    return web.json_response({"ok": True, "message": "The call is yours now."})


@routes.post("/calls/{public_id}/handover", name="call_handover")
@requires(*STAFF)
async def hand_over(request: web.Request) -> web.StreamResponse:
    """The officer holding the call offers it to a named colleague (``to``, a username)
    or, with ``to`` empty, back to the queue, with a note. They keep it until accepted."""
    form = await request.post()
    try:
        with request.app[keys.DB].session() as session:
            call, _ = call_for(request, session)
            offered = handover.offer(
                session,
                request.app[keys.SETTINGS],
                actor_of(request),
                current_user(request),
                current_roles(request),
                call,
                str(form.get("to", "")),
                str(form.get("note", "")),
            )
            to = session.get(User, offered.to_user_id) if offered.to_user_id else None
            whom = to.display_name if to is not None else "the queue"
    except SupervisionError as exc:
        return web.json_response({"error": str(exc)}, status=409)
    return web.json_response(
        {"ok": True, "message": f"Offered to {whom}. The call is yours until it is accepted."}
    )


@routes.post(r"/handovers/{handover_id:\d+}/accept", name="handover_accept")
@requires(*STAFF)
async def accept_handover(request: web.Request) -> web.StreamResponse:
    """A colleague takes a call handed to them (or to the queue): it is theirs, the
    officer who offered it is told, and the console opens."""
    user = current_user(request)
    try:
        with request.app[keys.DB].session() as session:
            call, taken = handover.accept(
                session,
                request.app[keys.SETTINGS],
                actor_of(request),
                user,
                current_roles(request),
                int(request.match_info["handover_id"]),
            )
            public_id, note = call.public_id, taken.note
    except SupervisionError as exc:
        return web.json_response({"error": str(exc)}, status=409)
    await request.app[keys.HUB].handlers.hand_over(public_id, user, note)
    raise web.HTTPSeeOther(f"/calls/{public_id}")


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


@routes.post("/calls/{public_id}/snapshots/{snapshot_id:\\d+}/markup", name="snapshot_markup")
@requires(*STAFF)
async def markup_snapshot(request: web.Request) -> web.StreamResponse:
    """A marked-up copy of a snapshot: the shapes arrive as JSON, are drawn here on a copy
    of the original's pixels (in a thread, no session open), and the copy is sealed as a
    new snapshot; the original's file and hash are left as they were."""
    keyring = request.app[keys.KEYRING]
    body = await request.read()
    try:
        drawing = markup.parse(body)
    except markup.MarkupRefused as exc:
        return web.json_response({"error": str(exc)}, status=400)
    with request.app[keys.DB].reader() as session:
        call, _ = call_for(request, session)
        original = _snapshot_of(request, session, call)
        file = sealing.file_at(session, keyring, original.path)
        if file is None:
            raise web.HTTPNotFound()
    try:
        plain = await asyncio.to_thread(markup.read_original, keyring, file, original.sha256)
        jpeg, width, height = await asyncio.to_thread(markup.render, plain, drawing)
    except EvidenceError as exc:
        return web.json_response({"error": str(exc)}, status=409)
    user, source = current_user(request), source_of(request)

    def keep() -> Snapshot:
        with request.app[keys.DB].session() as session:
            call, _ = call_for(request, session)
            return markup.keep_copy(
                session, keyring, call, original, user, jpeg, (width, height), drawing, source
            )

    try:
        copy = await asyncio.to_thread(keep)
    except EvidenceError as exc:
        return web.json_response({"error": str(exc)}, status=409)
    return web.json_response(_snapshot_json(call.public_id, copy, f"{original.id}"))


@routes.post("/calls/{public_id}/snapshots/{snapshot_id:\\d+}/caption", name="snapshot_caption")
@requires(*STAFF)
async def caption_snapshot(request: web.Request) -> web.StreamResponse:
    """A snapshot's caption: metadata on its row, its file untouched."""
    form = await request.post()
    actor = Actor(current_user(request).username, source_of(request))
    try:
        with request.app[keys.DB].session() as session:
            call, _ = call_for(request, session)
            snapshot = _snapshot_of(request, session, call)
            markup.set_caption(session, actor, call, snapshot, str(form.get("caption", "")))
    except markup.MarkupRefused as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response({"ok": True, "caption": snapshot.caption})


@routes.post("/calls/{public_id}/drafts/{form}", name="console_draft")
@requires(*STAFF)
async def save_draft(request: web.Request) -> web.StreamResponse:
    """What the officer is typing in a note or THRIVE, kept as they type (theirs alone)."""
    form = await request.post()
    values = {name: str(value) for name, value in form.items()}
    try:
        with request.app[keys.DB].session() as session:
            _, incident = call_for(request, session)
            draft = drafts.save(
                session, current_user(request), incident.id or 0, request.match_info["form"], values
            )
    except drafts.DraftRefused as exc:
        return web.json_response({"error": str(exc)}, status=400)
    if draft is None:
        return web.json_response({"ok": True, "saved": None})
    return web.json_response({"ok": True, "saved": uk_time(draft.saved_at, "%H:%M")})


@routes.post("/calls/{public_id}/end", name="call_end")
@requires(*STAFF)
async def end_call(request: web.Request) -> web.StreamResponse:
    actor = Actor(current_user(request).username, source_of(request))
    console_user = request.app[keys.HUB].handlers.console_user(request.match_info["public_id"])
    with request.app[keys.DB].session() as session:
        call, incident = call_for(request, session)
        try:  # an officer whose call was taken over or handed on no longer ends it
            supervision.seat(call, current_user(request), current_roles(request), console_user)
        except SupervisionError as exc:
            raise web.HTTPConflict(text=str(exc)) from None
        life.end(session, request.app[keys.SETTINGS], call, actor, HANDLER_ENDED)
    await request.app[keys.HUB].hang_up(call.public_id, HANDLER_ENDED)
    raise web.HTTPSeeOther(f"/incidents/{incident.id}")


def _mode(
    session: Session, call: Call, user: User, roles: Any, console_user: int | None
) -> tuple[str, str]:
    """How the console opens: handling the call, observing it (a supervisor on a call
    another officer holds), or read-only; and who holds it, to say so."""
    holder_id = supervision.holder_of(call, console_user)
    holder = session.get(User, holder_id) if holder_id is not None else None
    name = holder.display_name if holder is not None else ""
    try:
        return supervision.seat(call, user, roles, console_user).value, name
    except SupervisionError:
        return "read-only", name


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


def _snapshot_of(request: web.Request, session: Session, call: Call) -> Snapshot:
    snapshot = session.get(Snapshot, int(request.match_info["snapshot_id"]))
    if snapshot is None or snapshot.call_id != call.id:
        raise web.HTTPNotFound()
    return snapshot


def _snapshot_json(public_id: str, snapshot: Snapshot, label: str) -> dict[str, Any]:
    return {
        "id": snapshot.id,
        "url": f"/calls/{public_id}/snapshots/{snapshot.id}",
        "sha256": snapshot.sha256,
        "width": snapshot.width,
        "height": snapshot.height,
        "caption": snapshot.caption,
        "original": snapshot.original_id,
        "label": label,
    }


def _root(snapshot: Snapshot, by_id: dict[int | None, Snapshot]) -> Snapshot:
    seen = 0
    while snapshot.original_id in by_id and seen < len(by_id):
        snapshot, seen = by_id[snapshot.original_id], seen + 1
    return snapshot


def _in_order(snapshots: list[Snapshot]) -> list[Snapshot]:
    """Each marked-up copy right after the original it was drawn from."""
    by_id = {s.id: s for s in snapshots}
    return sorted(snapshots, key=lambda s: (_root(s, by_id).id or 0, s.id or 0))


def _labels(snapshots: list[Snapshot]) -> dict[int | None, str]:
    """ "Snapshot 2" for the second taken; "Snapshot 2, marked up" for a copy of it."""
    by_id = {s.id: s for s in snapshots}
    numbers: dict[int | None, int] = {}
    for snapshot in snapshots:
        if snapshot.original_id is None:
            numbers[snapshot.id] = len(numbers) + 1
    return {
        s.id: f"Snapshot {numbers.get(_root(s, by_id).id, '?')}"
        + (", marked up" if s.original_id is not None else "")
        for s in snapshots
    }


def _location(session: Session, call: Call) -> dict[str, float] | None:
    """Where the caller said they are: shared on this call, else by a location link."""
    if call.caller_latitude is not None and call.caller_longitude is not None:
        return {
            "lat": call.caller_latitude,
            "lon": call.caller_longitude,
            "accuracy": call.caller_location_accuracy_m or 0.0,
        }
    shared = locations.for_incident(session, call.incident_id)
    if not shared:
        return None
    last = shared[-1]
    return {"lat": last.latitude, "lon": last.longitude, "accuracy": last.accuracy_m}


def _map_url(template: str, place: dict[str, float] | None) -> str:
    """The force's map at the caller's location (the template is checked at start-up)."""
    if not template or place is None:
        return ""
    return template.format(lat=round(place["lat"], 6), lon=round(place["lon"], 6))
