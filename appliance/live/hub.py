"""The hub: one live call per media room, its participants' WebSockets, and the DB moves.

Web handlers hand each authorised WebSocket to the hub; the hub validates messages,
drives the media room and calls the services. It is the only place where signalling,
media and the database meet.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from appliance import metrics
from appliance.config import Settings
from appliance.db import Database
from appliance.live import protocol
from appliance.live.quality import QualityMeter
from appliance.logs import call_id_var
from appliance.models import Call, CallState, GuestInvite, Recording, Snapshot, User, utcnow
from appliance.services import audit, cad, calls, evidence, guests, survey
from appliance.services.audit import Actor
from appliance.services.calls import CallError
from appliance.services.keys import Keyring
from media import IceServer, LegStats, NoVideoError, Room, RoomConfig, RoomEvent, SdpError
from media.ice import turn_credentials
from media.workers import RoomProxy, WorkerPool

log = logging.getLogger("evr.live")

CALLER = "caller"
HANDLER = "handler"
GUEST = "guest"
STATS_INTERVAL_S = 2.0


def browser_ice_server(server: IceServer) -> dict[str, Any]:
    """The shape RTCPeerConnection takes in a browser."""
    entry: dict[str, Any] = {"urls": list(server.urls)}
    if server.username:
        entry["username"] = server.username
        entry["credential"] = server.credential
    return entry


@dataclass(eq=False)
class Participant:
    role: str
    ws: web.WebSocketResponse
    source: str
    user: User | None = None
    guest: GuestInvite | None = None

    @property
    def leg_id(self) -> str:
        """The caller and the handler are one leg each; each guest has a leg of their own."""
        return guests.leg_id(self.guest) if self.guest is not None else self.role

    @property
    def actor(self) -> Actor:
        if self.guest is not None:
            return Actor(f"guest:{self.guest.role}", self.source)
        return Actor(self.user.username if self.user else CALLER, self.source)


@dataclass(eq=False)
class LiveCall:
    public_id: str
    room: Room | RoomProxy | None = None
    participants: dict[str, Participant] = field(default_factory=dict)
    recording_id: int | None = None
    admitted_at: float | None = None
    setup_observed: bool = False
    empty_since: float | None = None  # when the caller and the handler had both gone
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


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
        self.keyring = keyring
        self.media = media
        self.calls: dict[str, LiveCall] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._quality = QualityMeter()
        self._breached: set[str] = set()
        self._sampler: asyncio.Task[None] | None = None
        self.cad_poke: Callable[[], None] = lambda: None

    # -- configuration ----------------------------------------------------------------

    def ice_servers(self, public_id: str) -> list[IceServer]:
        servers = []
        if self.settings.stun_urls:
            servers.append(IceServer(urls=list(self.settings.stun_urls)))
        if self.settings.turn_urls and self.settings.turn_secret:
            username, credential = turn_credentials(
                self.settings.turn_secret.get_secret_value(),
                f"call-{public_id}",
                ttl_s=self.settings.turn_ttl_seconds,
            )
            servers.append(
                IceServer(
                    urls=list(self.settings.turn_urls), username=username, credential=credential
                )
            )
        return servers

    def _live(self, public_id: str) -> LiveCall:
        live = self.calls.get(public_id)
        if live is None:
            live = self.calls[public_id] = LiveCall(public_id)
        return live

    def _load(self, public_id: str) -> Call:
        with self.db.session() as session:
            call = calls.by_public_id(session, public_id)
            if call is None:
                raise CallError("no such call")
            return call

    # -- a participant's WebSocket ------------------------------------------------------

    async def serve(self, public_id: str, participant: Participant) -> None:
        """Run one participant's socket until it closes. Never raises for bad input."""
        call_id_var.set(public_id)
        live = self._live(public_id)
        previous = live.participants.get(participant.leg_id)
        if previous is not None:
            await previous.ws.close(code=4000, message=b"replaced by a newer connection")
        live.participants[participant.leg_id] = participant
        if participant.role in (CALLER, HANDLER):
            live.empty_since = None
        metrics.SIGNALLING_CONNECTIONS.labels(participant.role).inc()
        try:
            await self._send(
                participant,
                {
                    "type": "hello",
                    "role": participant.role,
                    "iceServers": [browser_ice_server(s) for s in self.ice_servers(public_id)],
                    **self._state_of(self._load(public_id), live),
                },
            )
            await self._notify_presence(live, participant, True)
            async for message in participant.ws:
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await self._handle_raw(live, participant, message.data)
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            metrics.SIGNALLING_CONNECTIONS.labels(participant.role).dec()
            if live.participants.get(participant.leg_id) is participant:
                del live.participants[participant.leg_id]
                if participant.guest is not None:
                    await self._guest_left(live, participant)
                await self._notify_presence(live, participant, False)
                if not any(p.role in (CALLER, HANDLER) for p in live.participants.values()):
                    live.empty_since = time.monotonic()
            if not live.participants and live.room is None:
                self.calls.pop(public_id, None)

    async def _handle_raw(self, live: LiveCall, participant: Participant, raw: Any) -> None:
        try:
            message = protocol.parse(raw)
        except protocol.ProtocolError as exc:
            metrics.SIGNALLING_ERRORS.labels(exc.code).inc()
            await self._send(participant, protocol.error(exc.code, exc.message))
            return
        try:
            async with live.lock:
                await self._dispatch(live, participant, message)
        except SdpError as exc:
            metrics.SIGNALLING_ERRORS.labels("bad_sdp").inc()
            await self._send(participant, protocol.error("bad_sdp", str(exc)))
        except CallError as exc:
            metrics.SIGNALLING_ERRORS.labels("not_allowed").inc()
            await self._send(participant, protocol.error("not_allowed", str(exc)))

    async def _dispatch(self, live: LiveCall, participant: Participant, message: Any) -> None:
        match message:
            case protocol.Join(sdp=sdp):
                await self._join(live, participant, sdp)
            case protocol.Restart(sdp=sdp):
                if live.room is None or participant.leg_id not in live.room.leg_ids:
                    raise CallError("join the call before restarting it")
                answer = await live.room.renegotiate(participant.leg_id, sdp)
                await self._send(participant, {"type": "answer", "sdp": answer})
            case protocol.Chat(text=text):
                await self._chat(live, participant, text)
            case protocol.Location(latitude=lat, longitude=lon, accuracy=accuracy):
                if participant.role != CALLER:
                    raise CallError("only the caller shares a location")
                with self.db.session() as session:
                    call = self._reload(session, live)
                    calls.record_location(session, call, lat, lon, accuracy)
                await self._broadcast(
                    live,
                    {"type": "location", "latitude": lat, "longitude": lon, "accuracy": accuracy},
                    roles=(HANDLER,),
                )
            case protocol.End() if participant.role == GUEST:
                await participant.ws.close(code=1000, message=b"left the call")
            case protocol.End():
                await self._end(live, participant.actor, f"{participant.role}_ended")
            case protocol.Ping():
                await self._send(participant, {"type": "pong"})

    # -- the moves ---------------------------------------------------------------------

    async def _join(self, live: LiveCall, participant: Participant, sdp: str) -> None:
        call = self._load(live.public_id)
        state = CallState(call.state)
        if participant.role == HANDLER and state not in (CallState.WAITING, CallState.CONNECTED):
            raise CallError(f"the call is {state.value}: there is nobody to admit")
        if participant.role == CALLER and state not in (
            CallState.INVITED,
            CallState.WAITING,
            CallState.CONNECTED,
        ):
            raise CallError(f"the call is {state.value}")
        if participant.role == GUEST and state is not CallState.CONNECTED:
            raise CallError(f"the call is {state.value}: a guest joins a connected call")
        if live.room is None:
            config = RoomConfig(
                ice_servers=self.ice_servers(live.public_id),
                allow_loopback=self.settings.media_allow_loopback,
            )
            live.room = self._new_room(live.public_id, config)
        if participant.leg_id in live.room.leg_ids:
            # A join (not a restart) comes from a new page: its old connection is gone.
            await live.room.leave(participant.leg_id)
        answer = await live.room.join(participant.leg_id, participant.role, sdp)
        await self._send(participant, {"type": "answer", "sdp": answer})

        with self.db.session() as session:
            call = self._reload(session, live)
            if participant.guest is not None:
                guests.joined(session, participant.guest, call, participant.source)
                metrics.GUESTS_JOINED.labels(participant.guest.role).inc()
            elif participant.role == CALLER:
                calls.caller_waiting(session, call, participant.source)
            elif CallState(call.state) is CallState.WAITING:
                assert participant.user is not None
                calls.admit(session, call, participant.user, participant.source)
                metrics.observe_admitted(call)
                live.admitted_at = time.monotonic()
                cad.queue_event(
                    session,
                    self.settings,
                    "call.connected",
                    call.incident_id,
                    {"call": {"id": call.public_id, "officer": participant.user.display_name}},
                )
        self.cad_poke()
        if participant.role == HANDLER:
            await self._start_recording_if_agreed(live)
        await self._broadcast_state(live)

    def _new_room(self, public_id: str, config: RoomConfig) -> Room | RoomProxy:
        """In the least-loaded media worker, or in this process when there are none."""
        if self.media is None:
            return Room(public_id, config, on_event=self._on_media_event)
        return self.media.room(public_id, config, on_event=self._on_media_event)

    async def _chat(self, live: LiveCall, participant: Participant, text: str) -> None:
        with self.db.session() as session:
            call = self._reload(session, live)
            if CallState(call.state) not in (CallState.WAITING, CallState.CONNECTED):
                raise CallError("the call is not live")
            message = calls.add_chat(session, call, participant.role, text, participant.user)
        await self._broadcast(
            live,
            {
                "type": "chat",
                "id": message.id,
                "from": participant.role,
                "name": self._name_of(participant),
                "text": message.body,
                "at": message.sent_at.isoformat(),
            },
        )

    async def _start_recording_if_agreed(self, live: LiveCall) -> None:
        if live.recording_id is not None or live.room is None:
            return
        with self.db.session() as session:
            call = self._reload(session, live)
            if not call.consent_recording:
                return
            existing = len(calls.recordings_of(session, call))
            path = evidence.recording_path(self.settings.data_dir, call, existing + 1)
            path.parent.mkdir(parents=True, exist_ok=True)
            recording, data_key = evidence.recording_started(session, self.keyring, call, path)
            live.recording_id = recording.id
        try:
            await live.room.start_recording(path, data_key)
            metrics.RECORDINGS.labels("started").inc()
        except Exception:
            log.exception("recording did not start", extra={"call": live.public_id})
            metrics.RECORDINGS.labels("failed").inc()
            with self.db.session() as session:
                call = self._reload(session, live)
                recording = session.get(Recording, live.recording_id)
                if recording is not None:
                    evidence.recording_interrupted(session, self.keyring, call, recording)
            live.recording_id = None

    async def _stop_recording(self, live: LiveCall, failure_counted: bool = False) -> None:
        if live.recording_id is None or live.room is None:
            return
        recording_id, live.recording_id = live.recording_id, None
        try:
            info = await live.room.stop_recording()
        except Exception:
            log.exception("recording did not close cleanly", extra={"call": live.public_id})
            if not failure_counted:
                metrics.RECORDINGS.labels("failed").inc()
            info = None
        with self.db.session() as session:
            call = self._reload(session, live)
            recording = session.get(Recording, recording_id)
            assert recording is not None
            if info is None:
                evidence.recording_interrupted(session, self.keyring, call, recording)
            else:
                recording.path = info.path  # an H264 caller is recorded as .mkv, not .webm
                evidence.recording_finished(
                    session,
                    self.keyring,
                    call,
                    recording,
                    duration_s=info.duration_s,
                    video_codec=info.video_codec or "",
                    audio_codecs=list(info.audio_codecs),
                    size_bytes=info.size_bytes,
                    sha256=info.sha256,
                )
                metrics.RECORDING_BYTES.inc(info.size_bytes)

    async def _recording_cut_short(self, live: LiveCall) -> None:
        """The recorder stopped (a full disk, a write error) while the call goes on: keep
        what was sealed, mark it incomplete, raise the alert metric."""
        async with live.lock:
            if live.recording_id is None:
                return
            log.error("recording cut short; the call goes on", extra={"call": live.public_id})
            await self._stop_recording(live, failure_counted=True)
            metrics.RECORDINGS_INCOMPLETE.inc()

    async def _end(self, live: LiveCall, actor: Actor, reason: str) -> None:
        await self._stop_recording(live)
        if live.admitted_at is not None:
            metrics.CALL_DURATION.observe(time.monotonic() - live.admitted_at)
        if live.room is not None:
            room, live.room = live.room, None
            try:
                await room.close()
            except Exception:
                log.exception("media room did not close cleanly", extra={"call": live.public_id})
        with self.db.session() as session:
            call = self._reload(session, live)
            calls.end(session, call, actor, reason)
            survey.after_call(session, self.settings, call)
            state = call.state
            cad.queue_event(
                session,
                self.settings,
                "call.ended",
                call.incident_id,
                {"call": {"id": call.public_id, "state": state, "reason": reason}},
            )
        self.cad_poke()
        metrics.CALLS_ENDED.labels(state).inc()
        await self._broadcast(live, {"type": "ended", "state": state, "reason": reason})
        for participant in list(live.participants.values()):
            await participant.ws.close(code=1000, message=b"call ended")
        self.calls.pop(live.public_id, None)

    # -- from outside the sockets ---------------------------------------------------------

    async def end_call(self, public_id: str, actor: Actor, reason: str) -> None:
        live = self.calls.get(public_id)
        if live is None:
            with self.db.session() as session:
                call = calls.by_public_id(session, public_id)
                if call is not None:
                    calls.end(session, call, actor, reason)
                    survey.after_call(session, self.settings, call)
                    cad.queue_event(
                        session,
                        self.settings,
                        "call.ended",
                        call.incident_id,
                        {"call": {"id": call.public_id, "state": call.state, "reason": reason}},
                    )
            self.cad_poke()
            return
        async with live.lock:
            await self._end(live, actor, reason)

    async def snapshot(self, public_id: str, user: User, source: str) -> Snapshot:
        live = self.calls.get(public_id)
        if live is None or live.room is None or CALLER not in live.room.leg_ids:
            raise CallError("the caller is not connected")
        try:
            jpeg = await live.room.snapshot(CALLER)
        except NoVideoError:
            raise CallError("no video from the caller yet") from None

        def keep() -> Snapshot:
            with self.db.session() as session:
                call = self._reload(session, live)
                return evidence.store_snapshot(session, self.keyring, call, user, jpeg, source)

        snapshot = await asyncio.to_thread(keep)
        await self._broadcast(
            live,
            {
                "type": "snapshot",
                "id": snapshot.id,
                "sha256": snapshot.sha256,
                "width": snapshot.width,
                "height": snapshot.height,
                "url": f"/calls/{public_id}/snapshots/{snapshot.id}",
                "at": snapshot.taken_at.isoformat(),
            },
            roles=(HANDLER,),
        )
        return snapshot

    async def notify(
        self, public_id: str, message: dict[str, Any], roles: tuple[str, ...] | None = None
    ) -> None:
        """Tell the pages on a live call about something that changed outside it."""
        live = self.calls.get(public_id)
        if live is not None:
            await self._broadcast(live, message, roles=roles)

    async def remove_guest(self, public_id: str, leg_id: str) -> None:
        """End only the guest's leg: their socket closes, the others' media goes on."""
        live = self.calls.get(public_id)
        if live is None:
            return
        participant = live.participants.get(leg_id)
        if participant is not None:
            await participant.ws.close(code=4001, message=b"removed from the call by the officer")
        async with live.lock:
            if live.room is not None and leg_id in live.room.leg_ids:
                await live.room.leave(leg_id)
        await self._broadcast_state(live)

    async def _guest_left(self, live: LiveCall, participant: Participant) -> None:
        """A guest's page closed: their leg goes (a rejoin makes a new one)."""
        async with live.lock:
            if live.room is not None and participant.leg_id in live.room.leg_ids:
                await live.room.leave(participant.leg_id)

    def _name_of(self, participant: Participant) -> str:
        if participant.guest is not None:
            return f"{participant.guest.name} ({guests.label(participant.guest)})"
        return participant.user.display_name if participant.user else "Caller"

    async def close_all(self) -> None:
        """On shutdown: end every live call cleanly, recordings closed and hashed."""
        for live in list(self.calls.values()):
            async with live.lock:
                await self._end(live, Actor("system"), "appliance_stopped")

    # -- helpers --------------------------------------------------------------------------

    def _reload(self, session: Any, live: LiveCall) -> Call:
        call = calls.by_public_id(session, live.public_id)
        if call is None:
            raise CallError("no such call")
        return call

    def _state_of(self, call: Call, live: LiveCall) -> dict[str, Any]:
        return {
            "state": call.state,
            "recording": live.recording_id is not None,
            "present": sorted(live.participants),
            "guests": [
                {
                    "leg": p.leg_id,
                    "role": p.guest.role,
                    "label": guests.label(p.guest),
                    "name": p.guest.name,
                }
                for p in live.participants.values()
                if p.guest is not None
            ],
            "connectedAt": call.connected_at.isoformat() if call.connected_at else None,
        }

    async def _broadcast_state(self, live: LiveCall) -> None:
        call = self._load(live.public_id)
        await self._broadcast(live, {"type": "state", **self._state_of(call, live)})

    async def _notify_presence(
        self, live: LiveCall, participant: Participant, present: bool
    ) -> None:
        message: dict[str, Any] = {
            "type": "presence",
            "role": participant.role,
            "leg": participant.leg_id,
            "present": present,
        }
        if participant.guest is not None:
            message |= {"label": guests.label(participant.guest), "name": participant.guest.name}
        await self._broadcast(live, message, exclude=participant.leg_id)
        if participant.guest is not None:
            await self._broadcast_state(live)

    async def _broadcast(
        self,
        live: LiveCall,
        message: dict[str, Any],
        roles: tuple[str, ...] | None = None,
        exclude: str | None = None,
    ) -> None:
        for key, participant in list(live.participants.items()):
            if (roles is None or participant.role in roles) and key != exclude:
                await self._send(participant, message)

    async def _send(self, participant: Participant, message: dict[str, Any]) -> None:
        if participant.ws.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            await participant.ws.send_json(message)

    def _on_media_event(self, event: RoomEvent) -> None:
        live = self.calls.get(event.room_id)
        if live is None:
            return
        if event.kind == "failed" and event.leg_id is None:
            self._spawn(self._media_failed(live, str(event.detail.get("reason", "media failed"))))
            return
        if event.kind == "failed":
            metrics.ICE_FAILURES.inc()
        elif event.kind == "recording_failed":
            metrics.RECORDINGS.labels("failed").inc()
            cut = asyncio.get_running_loop().create_task(self._recording_cut_short(live))
            self._background.add(cut)
            cut.add_done_callback(self._background.discard)
        elif (
            event.kind == "connected"
            and event.leg_id == HANDLER
            and live.admitted_at is not None
            and not live.setup_observed
        ):
            live.setup_observed = True
            metrics.CALL_SETUP.observe(time.monotonic() - live.admitted_at)
        self._spawn(
            self._broadcast(
                live, {"type": "media", "leg": event.leg_id, "event": event.kind}, roles=(HANDLER,)
            )
        )

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _media_failed(self, live: LiveCall, reason: str) -> None:
        """The room's media is gone (its worker died): the call fails, the rest carry on.

        The recording is kept as interrupted: the recorder flushes every packet and
        syncs every 2 s, so the file plays up to about when the worker stopped.
        """
        async with live.lock:
            if live.room is None or self.calls.get(live.public_id) is not live:
                return
            live.room = None
            recording_id, live.recording_id = live.recording_id, None
            log.error("media for the call failed", extra={"call": live.public_id, "reason": reason})
            with self.db.session() as session:
                call = self._reload(session, live)
                if recording_id is not None:
                    recording = session.get(Recording, recording_id)
                    if recording is not None:
                        evidence.recording_interrupted(session, self.keyring, call, recording)
                calls.fail(session, call, reason)
                state = call.state
                cad.queue_event(
                    session,
                    self.settings,
                    "call.ended",
                    call.incident_id,
                    {"call": {"id": call.public_id, "state": state, "reason": "media_failed"}},
                )
            self.cad_poke()
            if recording_id is not None:
                metrics.RECORDINGS.labels("failed").inc()
            metrics.CALLS_ENDED.labels(state).inc()
            await self._broadcast(live, {"type": "ended", "state": state, "reason": "media_failed"})
            for participant in list(live.participants.values()):
                await participant.ws.close(code=1011, message=b"call media failed")
            self.calls.pop(live.public_id, None)

    # -- sampling: quality, queue, storage -------------------------------------------------

    def active_calls(self) -> int:
        return sum(1 for live in self.calls.values() if live.admitted_at is not None)

    async def start_sampling(self, period_s: float = STATS_INTERVAL_S) -> None:
        if self._sampler is None:
            self._sampler = asyncio.create_task(self._sample_forever(period_s))

    async def stop_sampling(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None

    async def _sample_forever(self, period_s: float) -> None:
        while True:
            await asyncio.sleep(period_s)
            try:
                await self.sample()
            except Exception:
                log.exception("sampling failed")

    async def sample(self) -> None:
        """One period: each live room's stats to its handler and to the metrics; the queue."""
        samples: list[tuple[str, LegStats]] = []
        for live in list(self.calls.values()):
            room = live.room
            if room is None:
                continue
            if self._abandoned(live):
                self._spawn(self._end_abandoned(live))
                continue
            try:
                stats = await room.stats()
            except Exception:
                log.exception("stats failed", extra={"call": live.public_id})
                continue
            samples.extend((live.public_id, leg) for leg in stats.values())
            await self._broadcast(
                live,
                {
                    "type": "stats",
                    "legs": {leg: dataclasses.asdict(s) for leg, s in stats.items()},
                    "at": utcnow().isoformat(),
                },
                roles=(HANDLER,),
            )
        self._quality.record(samples)
        metrics.CALLS_ACTIVE.set(self.active_calls())
        await asyncio.to_thread(self._sample_queue)

    def _abandoned(self, live: LiveCall) -> bool:
        """Admitted, and both the caller and the handler gone for longer than the setting."""
        return (
            live.admitted_at is not None
            and live.empty_since is not None
            and time.monotonic() - live.empty_since > self.settings.call_abandoned_seconds
        )

    async def _end_abandoned(self, live: LiveCall) -> None:
        """End a call nobody came back to: the recording is closed, the call and CAD told."""
        async with live.lock:
            if self.calls.get(live.public_id) is live and self._abandoned(live):
                await self._end(live, Actor(audit.SYSTEM), "abandoned")

    def _sample_queue(self) -> None:
        target = self.settings.queue_target_seconds
        with self.db.session() as session:
            waiting = calls.all_waiting(session)
        now = utcnow()
        waits = {c.public_id: (now - c.waiting_at).total_seconds() for c in waiting if c.waiting_at}
        metrics.QUEUE_LENGTH.set(len(waiting))
        metrics.QUEUE_OLDEST_WAIT.set(max(waits.values(), default=0.0))
        for public_id, waited in waits.items():
            if waited > target and public_id not in self._breached:
                self._breached.add(public_id)
                metrics.QUEUE_BREACHES.inc()
        self._breached &= set(waits)
