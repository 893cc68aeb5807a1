"""The hub: one live call per media room, its participants' WebSockets, and the DB moves.

Web handlers hand each authorised WebSocket to the hub; the hub validates messages,
drives the media room and calls the services. It only translates: what a move of the
call means (the survey, the appointment, the CAD event) is decided in
``services.calls.life``; the recording's life is in ``recording.py``, the 2 s sampling
in ``sampler.py``, the chat in ``chat.py``, the caller's location in ``whereabouts.py``,
observers and a call changing hands in ``seats.py``, guests and viewers and what pages
are told of them in ``visitors.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType
from sqlmodel import Session

from appliance import metrics
from appliance.config import Settings
from appliance.db import Database
from appliance.live import protocol, seats, viewers
from appliance.live.alerts import Alerts
from appliance.live.chat import Chat
from appliance.live.ice import browser_ice_server, ice_servers
from appliance.live.participants import (
    CALLER,
    GUEST,
    HANDLER,
    OBSERVER,
    VIEWER,
    LiveCall,
    Participant,
)
from appliance.live.recording import Recordings
from appliance.live.sampler import Sampler
from appliance.live.seats import Handlers
from appliance.live.visitors import Visitors, is_visitor
from appliance.live.whereabouts import Whereabouts
from appliance.logs import call_id_var
from appliance.models import FINAL_STATES, Call, CallState, Snapshot, User
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.calls import guests, life, states
from appliance.services.calls.states import CallError
from appliance.services.evidence.master_key import Keyring
from appliance.services.identity.throttle import Throttle
from media import Room, RoomConfig, RoomEvent, SdpError
from media.background import spawn
from media.errors import UnknownLegError
from media.protocols import MediaRoom
from media.sdp import parse_offer, sent_kinds
from media.workers import WorkerPool

log = logging.getLogger("evr.live")

# A move of the call, made by the hub in its own transaction (``calls.life``).
Move = Callable[[Session, Call], bool]


class CallHub:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        keyring: Keyring,
        media: WorkerPool | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.media = media
        self.calls: dict[str, LiveCall] = {}
        # How often a staff socket is re-authorised besides on each message it sends.
        self.recheck_seconds = 5.0
        self.recordings = Recordings(settings, db, keyring)
        self.sampler = Sampler(settings, db, self.calls, self._end_abandoned)
        self.chat = Chat(settings, db)
        self.message_limit = Throttle(settings.socket_messages_per_minute)
        self.whereabouts = Whereabouts(settings, db)
        self.alerts = Alerts()
        self.visitors = Visitors(settings, self.calls, self._load)
        self.handlers = Handlers(self.calls, self.visitors.broadcast_state)

    def _live(self, public_id: str) -> LiveCall:
        live = self.calls.get(public_id)
        if live is None:
            live = self.calls[public_id] = LiveCall(public_id)
        return live

    def _load(self, public_id: str) -> Call:
        with self.db.reader() as session:
            return states.get(session, public_id)

    # -- a participant's WebSocket ------------------------------------------------------

    async def serve(self, public_id: str, participant: Participant) -> None:
        """Run one participant's socket until it closes. Never raises for bad input."""
        call_id_var.set(public_id)
        live = self._live(public_id)
        previous = live.participants.get(participant.leg_id)
        if previous is not None:
            await previous.ws.close(code=seats.REPLACED, message=b"replaced by a newer connection")
        live.participants[participant.leg_id] = participant
        if participant.role in (CALLER, HANDLER):
            live.empty_since = None
        metrics.SIGNALLING_CONNECTIONS.labels(participant.role).inc()
        watch = asyncio.create_task(participant.keep_checking(self.recheck_seconds))
        try:
            servers = ice_servers(self.settings, public_id)
            await participant.send(
                {
                    "type": "hello",
                    "role": participant.role,
                    "iceServers": [browser_ice_server(s) for s in servers],
                    "guestSlots": self.visitors.guest_slots(),
                    "slots": live.slots.get(participant.leg_id),
                    **self.visitors.state_for(live, self._load(public_id), participant),
                }
            )
            await self.visitors.notify_presence(live, participant, True)
            async for message in participant.ws:
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await self._handle_raw(live, participant, message.data)
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            watch.cancel()
            metrics.SIGNALLING_CONNECTIONS.labels(participant.role).dec()
            if live.participants.get(participant.leg_id) is participant:
                del live.participants[participant.leg_id]
                if is_visitor(participant):
                    await self.visitors.leave(live, participant.leg_id)
                if participant.role == OBSERVER:
                    seats.observer_left(self.db, live, participant)
                await self.visitors.notify_presence(live, participant, False)
                if not any(p.role in (CALLER, HANDLER) for p in live.participants.values()):
                    live.empty_since = time.monotonic()
            if not live.participants and live.room is None:
                self.calls.pop(public_id, None)

    async def _handle_raw(self, live: LiveCall, participant: Participant, raw: Any) -> None:
        socket = f"{live.public_id}/{participant.leg_id}"  # a reconnect does not reset it
        if self.message_limit.blocked(socket):
            metrics.SIGNALLING_ERRORS.labels("flooding").inc()
            await participant.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"flooding")
            return
        self.message_limit.hit(socket)
        try:
            message = protocol.parse(raw)
        except protocol.ProtocolError as exc:
            metrics.SIGNALLING_ERRORS.labels(exc.code).inc()
            await participant.send(protocol.error(exc.code, exc.message))
            return
        try:
            async with live.lock:
                await self._dispatch(live, participant, message)
        except SdpError as exc:
            metrics.SIGNALLING_ERRORS.labels("bad_sdp").inc()
            await participant.send(protocol.error("bad_sdp", str(exc)))
        except CallError as exc:
            metrics.SIGNALLING_ERRORS.labels("not_allowed").inc()
            await participant.send(protocol.error("not_allowed", str(exc)))

    async def _dispatch(self, live: LiveCall, participant: Participant, message: Any) -> None:
        if not await participant.still_allowed():
            return
        seats.check_message(participant, message)
        viewers.check_message(participant, message)
        match message:
            case protocol.Join(sdp=sdp):
                await self._join(live, participant, sdp)
            case protocol.Restart(sdp=sdp):
                if live.room is None or participant.leg_id not in live.room.leg_ids:
                    raise CallError("join the call before restarting it")
                offer = parse_offer(sdp)  # a receive-only leg stays so across a restart
                seats.check_offer(participant, offer)
                viewers.check_offer(participant, offer)
                answer = await live.room.renegotiate(participant.leg_id, sdp)
                await participant.send({"type": "answer", "sdp": answer})
            case protocol.Chat(text=text):
                await self.chat.post(live, participant, text)
            case protocol.Location(latitude=lat, longitude=lon, accuracy=accuracy):
                await self.whereabouts.share(live, participant, lat, lon, accuracy)
            case protocol.SoundOnly(on=on, automatic=automatic):
                await live.switch_sound_only(participant, on, automatic)
            case protocol.TextFirst(on=on):
                await live.switch_text_first(participant, on)
            case protocol.End() if participant.role in (GUEST, OBSERVER, VIEWER):
                await participant.ws.close(code=1000, message=b"left the call")
            case protocol.End():
                actor, reason = participant.actor, f"{participant.role}_ended"
                await self._end(
                    live,
                    lambda s, c: life.end(s, self.settings, c, actor, reason),
                    reason,
                )
            case protocol.Ping():
                await participant.send({"type": "pong"})

    # -- the moves ---------------------------------------------------------------------

    async def _join(self, live: LiveCall, participant: Participant, sdp: str) -> None:
        states.check_join(participant.role, self._load(live.public_id))
        offer = parse_offer(sdp)  # a bad offer is refused before any media room exists
        seats.check_offer(participant, offer)
        viewers.check_offer(participant, offer)
        if live.room is None:
            config = RoomConfig(
                ice_servers=ice_servers(self.settings, live.public_id),
                allow_loopback=self.settings.media_allow_loopback,
            )
            live.room = self._new_room(live.public_id, config)
        if participant.leg_id in live.room.leg_ids:
            # A join (not a restart) comes from a new page: its old connection is gone.
            # The room may have dropped that leg meanwhile (the old page's leg failed).
            with contextlib.suppress(UnknownLegError):
                await live.room.leave(participant.leg_id)
        # The media room routes by its own roles: an observer is a guest that sends nothing,
        # and so is a viewer (whose offer has room for the caller alone).
        media_role = GUEST if participant.role in (OBSERVER, VIEWER) else participant.role
        try:
            answer = await live.room.join(participant.leg_id, media_role, sdp)
        except BaseException:
            if live.room is not None and not live.room.leg_ids:
                await self._close_media(live)  # no leg joined: the room is not left behind
            raise
        await participant.send({"type": "answer", "sdp": answer})
        if participant.role in (OBSERVER, VIEWER):
            return  # audited when its socket opened; the call does not move
        if participant.role == CALLER:
            live.caller_sends = frozenset(sent_kinds(offer))

        with self.db.session() as session:
            call = states.get(session, live.public_id)
            if participant.guest is not None:
                guests.joined(session, participant.guest, call, participant.source)
                metrics.GUESTS_JOINED.labels(participant.guest.role).inc()
            elif participant.role == CALLER:
                states.caller_waiting(session, call, participant.source)
            elif participant.user is not None and life.admit(
                session, self.settings, call, participant.user, participant.source
            ):
                metrics.observe_admitted(call, self.alerts.take(live.public_id))
                live.admitted_at = time.monotonic()
        if participant.role == HANDLER:
            await self.recordings.start_if_agreed(live)
        await self.visitors.broadcast_state(live)

    def _new_room(self, public_id: str, config: RoomConfig) -> MediaRoom:
        """In the least-loaded media worker, or in this process when there are none."""
        if self.media is None:
            return Room(public_id, config, on_event=self._on_media_event)
        return self.media.room(public_id, config, on_event=self._on_media_event)

    async def _end(
        self, live: LiveCall, move: Move, reason: str, code: int = 1000, why: bytes = b"call ended"
    ) -> bool:
        """Make the move, tell the pages, then close the media. Whether the move changed
        the call's state is the service's answer, passed on.

        The pages hear first: closing a recording seals it, which for a long call takes
        seconds a caller should not spend looking at a call that has ended. A crash in
        between leaves the recording open, and start-up keeps it as partial."""
        with self.db.session() as session:
            call = states.get(session, live.public_id)
            moved = move(session, call)
            state = call.state
        await self._farewell(live, state, reason, code, why)
        await self._close_media(live)
        return moved

    async def _close_media(self, live: LiveCall) -> None:
        await self.recordings.stop(live)
        if live.admitted_at is not None:
            metrics.CALL_DURATION.observe(time.monotonic() - live.admitted_at)
            live.admitted_at = None
        if live.room is not None:
            room, live.room = live.room, None
            try:
                await room.close()
            except Exception:
                log.exception("media room did not close cleanly", extra={"call": live.public_id})

    async def _farewell(
        self, live: LiveCall, state: str, reason: str, code: int, why: bytes
    ) -> None:
        await live.broadcast({"type": "ended", "state": state, "reason": reason})
        for participant in list(live.participants.values()):
            await participant.ws.close(code=code, message=why)
        self.calls.pop(live.public_id, None)

    async def _end_abandoned(self, live: LiveCall) -> None:
        """End a call nobody came back to: the recording is closed, the call and CAD told."""
        async with live.lock:
            if self.calls.get(live.public_id) is live and self.sampler.abandoned(live):
                await self._end(
                    live, lambda s, c: life.abandon(s, self.settings, c), life.ABANDONED
                )

    # -- from outside the sockets ---------------------------------------------------------

    async def hang_up(self, public_id: str, reason: str) -> None:
        """A service has ended the call (the console's End, a revoke, a quick exit, the
        caller not safe): close its media and tell its pages. Nothing for a call that is
        not live here or still live in the database."""
        live = self.calls.get(public_id)
        if live is None:
            return
        async with live.lock:
            state = self._load(public_id).state
            if CallState(state) not in FINAL_STATES or self.calls.get(public_id) is not live:
                return
            await self._farewell(live, state, reason, 1000, b"call ended")
            await self._close_media(live)

    async def snapshot(self, public_id: str, user: User, source: str) -> Snapshot:
        return await self.recordings.snapshot(self.calls.get(public_id), user, source)

    async def notify(
        self, public_id: str, message: dict[str, Any], roles: tuple[str, ...] | None = None
    ) -> None:
        """Tell the pages on a live call about something that changed outside it."""
        live = self.calls.get(public_id)
        if live is not None:
            await live.broadcast(message, roles)

    async def close_all(self) -> None:
        """On shutdown: end every live call cleanly, recordings closed and hashed."""
        system = Actor(audit.SYSTEM)
        for live in list(self.calls.values()):
            async with live.lock:
                await self._end(
                    live,
                    lambda s, c: life.end(s, self.settings, c, system, "appliance_stopped"),
                    "appliance_stopped",
                )

    # -- what the media room says ---------------------------------------------------------

    def _on_media_event(self, event: RoomEvent) -> None:
        live = self.calls.get(event.room_id)
        if live is None:
            return
        if event.kind == "routed":
            live.slots[event.leg_id or ""] = event.detail["slots"]
            participant = live.participants.get(event.leg_id or "")
            if participant is not None:
                spawn(participant.send({"type": "slots", "slots": event.detail["slots"]}))
            return
        if event.kind == "failed" and event.leg_id is None:
            spawn(self._media_failed(live, str(event.detail.get("reason", "media failed"))))
            return
        if event.kind == "failed":
            metrics.ICE_FAILURES.inc()
        elif event.kind == "recording_failed":
            metrics.RECORDINGS.labels("failed").inc()
            spawn(self.recordings.cut_short(live))
        elif event.kind == "recording_opened":
            spawn(asyncio.to_thread(self.recordings.opened, live, str(event.detail["path"])))
        elif (
            event.kind == "connected"
            and event.leg_id == HANDLER
            and live.admitted_at is not None
            and not live.setup_observed
        ):
            live.setup_observed = True
            metrics.CALL_SETUP.observe(time.monotonic() - live.admitted_at)
        message = {"type": "media", "leg": event.leg_id, "event": event.kind}
        spawn(live.broadcast(message, (HANDLER,)))

    async def _media_failed(self, live: LiveCall, reason: str) -> None:
        """The room's media is gone (its worker died): the call fails, the rest carry on.

        The recording is kept as interrupted: the recorder flushes every packet and
        syncs every 2 s, so the file plays up to about when the worker stopped.
        """
        async with live.lock:
            if live.room is None or self.calls.get(live.public_id) is not live:
                return
            live.room = None
            log.error("media for the call failed", extra={"call": live.public_id, "reason": reason})
            if live.recording_id is not None:
                metrics.RECORDINGS.labels("failed").inc()
                self.recordings.interrupted(live)
            await self._end(
                live,
                lambda s, c: life.fail(s, self.settings, c, life.MEDIA_FAILED),
                life.MEDIA_FAILED,
                code=1011,
                why=b"call media failed",
            )
