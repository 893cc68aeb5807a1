"""A room: the legs of one call, the routing between them, its recording."""

import asyncio
import contextlib
import inspect
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc.sdp import SessionDescription

from media import sdp
from media.background import spawn
from media.config import RoomConfig
from media.errors import (
    LegExistsError,
    NoVideoError,
    RecordingError,
    RoomClosedError,
    UnknownLegError,
)
from media.events import RoomEvent
from media.leg import ROLES, Leg
from media.peer import Peer
from media.recorder import Recorder, RecordingInfo
from media.relay import EncodedFrame, ForwardTrack, Source
from media.snapshot import snapshot_jpeg
from media.stats import LegStats, collect

logger = logging.getLogger(__name__)

# Whose media fills a leg's outgoing tracks, most wanted first. A leg's offer
# decides how many tracks of each kind it can receive; the first audio and video
# track of a handler carry the caller, the first of a caller carry the handler.
SOURCE_ORDER: dict[str, tuple[str, ...]] = {
    "caller": ("handler", "guest"),
    "handler": ("caller", "guest"),
    "guest": ("caller", "handler", "guest"),
}
SNAPSHOT_KEYFRAME_WAIT_S = 1.5


class Room:
    """One call's media: legs join with an offer and get an answer.

    The room decides nothing about people: the appliance says who joins in which
    role; the room routes media by role, records, and reports events through
    ``on_event`` (always called on the event loop, never raising into the room; a
    coroutine it returns is run as a background task).
    """

    def __init__(
        self,
        room_id: str,
        config: RoomConfig | None = None,
        on_event: Callable[[RoomEvent], Any] | None = None,
    ) -> None:
        self.room_id = room_id
        self.config = config or RoomConfig()
        self._on_event = on_event
        self._legs: dict[str, Leg] = {}
        self._joining: set[str] = set()
        self._seq = 0
        self._closed = False
        self._recorder: Recorder | None = None
        self._video_codec: str | None = None
        self._watchdog: asyncio.Task[None] | None = None

    @property
    def leg_ids(self) -> list[str]:
        return list(self._legs)

    def leg(self, leg_id: str) -> Leg:
        try:
            return self._legs[leg_id]
        except KeyError:
            raise UnknownLegError(leg_id) from None

    async def join(self, leg_id: str, role: str, offer_sdp: str) -> str:
        """Add a leg from its offer and return the complete answer SDP.

        A bad offer raises :class:`SdpError` and leaves the room as it was.
        """
        self._check_open()
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        if leg_id in self._legs or leg_id in self._joining:
            raise LegExistsError(f"leg {leg_id!r} is already in room {self.room_id!r}")
        offer = sdp.parse_offer(offer_sdp)
        offer_sdp = sdp.without_unsafe_candidates(offer_sdp, self.config.allow_loopback)
        self._joining.add(leg_id)
        try:
            peer = self._new_peer(leg_id)
            try:
                answer = await peer.answer(offer, offer_sdp, self._video_codec)
            except BaseException:
                await peer.close()
                raise
            if self._closed:
                await peer.close()
                raise RoomClosedError(f"room {self.room_id!r} closed while {leg_id!r} joined")
            self._seq += 1
            leg = Leg(leg_id, role, self._seq, peer, self.config.snapshot_max_frames)
            self._legs[leg_id] = leg
        finally:
            self._joining.discard(leg_id)
        self._video_codec = self._video_codec or peer.video_codec()
        self._peer_state(peer, peer.state)
        self._route()
        self._start_watchdog()
        return answer

    async def renegotiate(self, leg_id: str, offer_sdp: str) -> str:
        """Answer a new offer from an existing leg; the other legs are not touched.

        An offer with new ICE credentials (an ICE restart after a network change)
        gets a fresh peer connection, because aiortc 1.16 cannot restart ICE on an
        existing one; the leg, its routing and its recording track stay the same
        and the other legs' media is switched over at the next keyframe. Any other
        offer is applied to the leg's current connection.
        """
        self._check_open()
        leg = self.leg(leg_id)
        offer = sdp.parse_offer(offer_sdp)
        offer_sdp = sdp.without_unsafe_candidates(offer_sdp, self.config.allow_loopback)
        async with leg.lock:
            return await self._renegotiate(leg, offer, offer_sdp)

    async def _renegotiate(self, leg: Leg, offer: SessionDescription, offer_sdp: str) -> str:
        leg_id = leg.leg_id
        old = leg.peer
        restart = old.remote is None or sdp.ice_credentials(offer) != sdp.ice_credentials(
            old.remote
        )
        if not restart:
            answer = await old.answer(offer, offer_sdp, self._video_codec)
            self._route()
            return answer
        peer = self._new_peer(leg_id)
        try:
            answer = await peer.answer(offer, offer_sdp, self._video_codec)
        except BaseException:
            await peer.close()
            raise
        if self._legs.get(leg_id) is not leg:
            await peer.close()
            raise UnknownLegError(leg_id)
        leg.peer = peer
        self._route()
        self._emit(leg_id, "renegotiated", ice_restart=True)
        self._peer_state(peer, peer.state)
        await old.close()
        return answer

    async def leave(self, leg_id: str) -> None:
        """Remove a leg and close its connection; the others carry on."""
        leg = self._legs.pop(leg_id, None)
        if leg is None:
            raise UnknownLegError(leg_id)
        self._route()
        await leg.peer.close()
        leg.set_state("closed")
        self._emit(leg_id, "closed", reason="left")

    async def start_recording(
        self, path: str | os.PathLike[str], data_key: bytes | None = None, guest_tracks: int = 0
    ) -> None:
        """Start writing the call to ``path`` (a ``.webm`` file that must not exist).

        ``guest_tracks`` audio tracks are kept for guests (0: guests are not recorded);
        the returned :class:`RecordingInfo` says which leg each track held.

        An H264 caller is written as Matroska beside it (``.mkv``); the
        ``recording_opened`` event says the real path as soon as the file exists, and
        ``stop_recording`` returns it. With a ``data_key`` the file is sealed (media/sealed.py)
        and the returned SHA-256 is of the plaintext as it was written.
        """
        self._check_open()
        if self._recorder is not None:
            raise RecordingError(f"room {self.room_id!r} is already recording")
        caller = self._first("caller")
        expect_video = caller is None or caller.video_source() is not None
        self._recorder = Recorder(
            path,
            expect_video,
            self._recording_failed,
            data_key,
            on_opened=self._recording_opened,
            guest_tracks=guest_tracks,
        )
        self._route()
        self._emit(None, "recording_started", path=str(path))

    async def stop_recording(self) -> RecordingInfo:
        """Finish the recording and return what was written, with its SHA-256."""
        recorder = self._recorder
        if recorder is None:
            raise RecordingError(f"room {self.room_id!r} is not recording")
        self._recorder = None
        info = await recorder.stop()
        self._emit(
            None,
            "recording_stopped",
            path=info.path,
            sha256=info.sha256,
            size_bytes=info.size_bytes,
            duration_s=info.duration_s,
        )
        return info

    @property
    def recording(self) -> bool:
        return self._recorder is not None

    async def snapshot(self, leg_id: str) -> bytes:
        """A full-resolution JPEG of the leg's latest incoming video."""
        leg = self.leg(leg_id)
        buffer = leg.keyframes
        source = leg.video_source()
        if buffer.stale and source is not None:
            source.request_keyframe()
            await buffer.wait_keyframe(SNAPSHOT_KEYFRAME_WAIT_S)
        frames = buffer.frames()
        if not frames:
            raise NoVideoError(f"leg {leg_id!r} has sent no video keyframe yet")
        return await asyncio.to_thread(snapshot_jpeg, frames)

    async def stats(self) -> dict[str, LegStats]:
        """Per-leg statistics; cheap, safe to poll every few seconds. Each leg's measured
        round trip also paces its video receiver's repeated NACKs (the appliance polls
        this every 2 s)."""
        legs = list(self._legs.values())
        results = await asyncio.gather(*(collect(leg) for leg in legs))
        for leg, result in zip(legs, results, strict=True):
            for source in leg.peer.sources:
                source.follow_round_trip(result.rtt_s)
        return {leg.leg_id: result for leg, result in zip(legs, results, strict=True)}

    async def close(self) -> RecordingInfo | None:
        """Stop recording (if any), close every leg, and refuse new ones."""
        if self._closed:
            return None
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        info = None
        if self._recorder is not None:
            try:
                info = await self.stop_recording()
            except RecordingError:
                logger.exception("room %s: recording could not be finished", self.room_id)
        for leg_id in list(self._legs):
            # A leg whose connection closed meanwhile has already left.
            with contextlib.suppress(UnknownLegError):
                await self.leave(leg_id)
        self._emit(None, "closed")
        return info

    def _check_open(self) -> None:
        if self._closed:
            raise RoomClosedError(f"room {self.room_id!r} is closed")

    def _new_peer(self, leg_id: str) -> Peer:
        return Peer(leg_id, self.config, self._peer_state, self._first_frame)

    def _first(self, role: str) -> Leg | None:
        return next((leg for leg in self._legs.values() if leg.role == role), None)

    def _route(self) -> None:
        legs = list(self._legs.values())
        for dest in legs:
            order = SOURCE_ORDER[dest.role]
            others = sorted(
                (leg for leg in legs if leg is not dest and leg.role in order),
                key=lambda leg: (order.index(leg.role), leg.seq),
            )
            reserved = sum(1 for role in order if role != "guest")
            for kind in ("audio", "video"):
                outputs = dest.outputs(kind)
                fixed = [s for leg in others if leg.role != "guest" for s in leg.sources(kind)]
                guests = [s for leg in others if leg.role == "guest" for s in leg.sources(kind)]
                plan = _slots(outputs, fixed, guests, max(reserved, len(fixed)))
                for track, source in zip(outputs, plan, strict=True):
                    track.attach(source)
            dest.follow_video()
            self._report_slots(dest)
        if self._recorder is not None:
            caller, handler = self._first("caller"), self._first("handler")
            self._recorder.video.attach(caller.video_source() if caller else None)
            self._recorder.audio["caller_audio"].attach(caller.audio_source() if caller else None)
            self._recorder.audio["handler_audio"].attach(
                handler.audio_source() if handler else None
            )
            self._recorder.assign_guests(
                {
                    leg.leg_id: source
                    for leg in legs
                    if leg.role == "guest" and (source := leg.audio_source()) is not None
                }
            )

    def _report_slots(self, dest: Leg) -> None:
        """Tell the owner whose media each of ``dest``'s outgoing tracks carries (by
        m-line ``mid``), when that changed: a page labels its tiles by it."""
        slots = {
            mid: (track.source.leg_id if track.source is not None else None)
            for track in dest.peer.outputs
            if (mid := dest.peer.mid_of(track)) is not None
        }
        if slots != dest.slots_reported:
            dest.slots_reported = slots
            self._emit(dest.leg_id, "routed", slots=slots)

    def _peer_state(self, peer: Peer, state: str) -> None:
        leg = self._legs.get(peer.leg_id)
        if leg is None or leg.peer is not peer:
            return
        if state == "closed":
            self._legs.pop(leg.leg_id, None)
            self._route()
            leg.set_state("closed")
            self._emit(leg.leg_id, "closed", reason="connection closed")
            spawn(peer.close())
        elif state in ("connected", "failed") and leg.set_state(state):
            self._emit(leg.leg_id, state)
        elif state in ("new", "connecting"):
            leg.set_state(state)

    def _first_frame(self, source: Source, frame: EncodedFrame) -> None:
        leg = self._legs.get(source.leg_id)
        if source.kind != "video" or leg is None or leg.first_video_reported:
            return
        leg.first_video_reported = True
        size = source.size
        self._emit(
            leg.leg_id,
            "first_video_frame",
            codec=frame.mime,
            width=size[0] if size else None,
            height=size[1] if size else None,
        )

    def _recording_opened(self, path: str, video_codec: str | None) -> None:
        self._emit(None, "recording_opened", path=path, video_codec=video_codec)

    def _recording_failed(self, reason: str) -> None:
        self._emit(None, "recording_failed", reason=reason)

    def _start_watchdog(self) -> None:
        if self._watchdog is None:
            self._watchdog = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        """Report a connected leg whose media stopped as ``disconnected``, and back.

        aiortc has no ``disconnected`` state: ICE consent failure takes ~30 s to
        surface as ``failed``. Silence on every incoming track says it sooner.
        """
        limit = self.config.disconnect_after_s
        while True:
            await asyncio.sleep(min(1.0, limit / 3))
            now = time.monotonic()
            for leg in list(self._legs.values()):
                if leg.state not in ("connected", "disconnected") or not leg.peer.sources:
                    continue
                last = leg.last_arrival()
                quiet = now - max(last or 0.0, leg.state_since if last is None else last)
                if leg.state == "connected" and quiet > limit:
                    leg.set_state("disconnected")
                    self._emit(leg.leg_id, "disconnected", silent_s=round(quiet, 1))
                elif leg.state == "disconnected" and quiet <= limit:
                    leg.set_state("connected")
                    self._emit(leg.leg_id, "connected", resumed=True)

    def _emit(self, leg_id: str | None, kind: str, **detail: Any) -> None:
        if self._on_event is None:
            return
        try:
            result = self._on_event(RoomEvent(self.room_id, leg_id, kind, detail))
        except Exception:
            logger.exception("room %s: on_event failed for %s", self.room_id, kind)
            return
        if inspect.isawaitable(result):
            spawn(_await(result))


def _slots(
    outputs: list[ForwardTrack], fixed: list[Source], guests: list[Source], reserved: int
) -> list[Source | None]:
    """Which source each of a leg's outgoing tracks of one kind carries.

    The first ``reserved`` tracks carry the other parties (``fixed``, in order). A guest
    keeps the track it already had while it is on the call, so one guest arriving or
    leaving never moves another guest to a different track (which would cost that
    guest's media a gap and a keyframe); a new guest takes the first free track.
    """
    plan: list[Source | None] = [None] * len(outputs)
    for i, source in enumerate(fixed[: len(outputs)]):
        plan[i] = source
    by_leg: dict[str, Source] = {}
    for source in guests:
        by_leg.setdefault(source.leg_id, source)
    placed: set[str] = set()
    for i in range(reserved, len(outputs)):
        current = outputs[i].source
        if current is not None and current.leg_id in by_leg and current.leg_id not in placed:
            plan[i] = by_leg[current.leg_id]
            placed.add(current.leg_id)
    free = (i for i in range(reserved, len(outputs)) if plan[i] is None)
    for leg_id, source in by_leg.items():
        if leg_id not in placed:
            index = next(free, None)
            if index is None:
                break
            plan[index] = source
    return plan


async def _await(result: Awaitable[Any]) -> None:
    """Run an ``async`` event handler's coroutine to completion in the background."""
    await result
