"""aiortc's default pipeline behind :class:`media.Room`'s interface, for the capacity bench.

What an aiortc user gets without our relay: every incoming track is decoded
(``RTCRtpReceiver`` → libvpx/opus decoders), fanned out with ``MediaRelay``, and every
outgoing track re-encoded by ``RTCRtpSender``; the recording is aiortc's
``MediaRecorder`` (decode → libx264/AAC encode into MP4). It runs in a media worker
(``WorkerPool(factory="bench.baseline_room:BaselineRoom")``) behind the same hub and
signalling as ours, so the two differ only in the media path. Not for calls: no
snapshots, no renegotiation, minimal stats.
"""

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRecorder, MediaRelay

from media import NoVideoError, RecordingInfo, RoomConfig, RoomEvent, UnknownLegError, passthrough
from media.stats import LegStats

logger = logging.getLogger(__name__)
OTHER = {"caller": "handler", "handler": "caller"}


class SlotTrack(MediaStreamTrack):
    """An outgoing track answered before its source exists; fed decoded frames later."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.source: MediaStreamTrack | None = None
        self.ready = asyncio.Event()

    def attach(self, track: MediaStreamTrack) -> None:
        self.source = track
        self.ready.set()

    async def recv(self) -> Any:
        await self.ready.wait()
        assert self.source is not None
        return await self.source.recv()


class BaselineRoom:
    def __init__(
        self,
        room_id: str,
        config: RoomConfig | None = None,
        on_event: Callable[[RoomEvent], Any] | None = None,
    ) -> None:
        self.room_id = room_id
        self.config = config or RoomConfig()
        self._on_event = on_event
        self.relay = MediaRelay()
        self.pcs: dict[str, RTCPeerConnection] = {}
        self.roles: dict[str, str] = {}
        self.tracks: dict[tuple[str, str], MediaStreamTrack] = {}
        self.slots: list[tuple[str, str, SlotTrack]] = []
        self.recorder: MediaRecorder | None = None
        self.recording_path: str | None = None
        self.started_at = 0.0

    @property
    def leg_ids(self) -> list[str]:
        return list(self.pcs)

    @property
    def recording(self) -> bool:
        return self.recorder is not None

    def _emit(self, leg_id: str | None, kind: str, **detail: Any) -> None:
        if self._on_event is not None:
            self._on_event(RoomEvent(self.room_id, leg_id, kind, detail))

    async def join(self, leg_id: str, role: str, offer_sdp: str) -> str:
        pc = RTCPeerConnection(self.config.rtc_configuration())
        self.pcs[leg_id] = pc
        self.roles[leg_id] = role

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.tracks[(role, track.kind)] = track
            for want, kind, slot in self.slots:
                if want == role and kind == track.kind and slot.source is None:
                    slot.attach(self.relay.subscribe(track))

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState in ("connected", "failed"):
                self._emit(leg_id, pc.connectionState)

        await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        for transceiver in pc.getTransceivers():
            slot = SlotTrack(transceiver.kind)
            transceiver.sender.replaceTrack(slot)
            transceiver.direction = "sendrecv"
            other = OTHER.get(role, "caller")
            self.slots.append((other, transceiver.kind, slot))
            if (other, transceiver.kind) in self.tracks:
                slot.attach(self.relay.subscribe(self.tracks[(other, transceiver.kind)]))
        if self.config.allow_loopback:
            passthrough.gather_loopback(pc)
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    async def renegotiate(self, leg_id: str, offer_sdp: str) -> str:
        raise NotImplementedError("the baseline does not renegotiate")

    async def leave(self, leg_id: str) -> None:
        pc = self.pcs.pop(leg_id, None)
        if pc is None:
            raise UnknownLegError(leg_id)
        await pc.close()
        self._emit(leg_id, "closed", reason="left")

    async def start_recording(self, path: str | os.PathLike[str], *args: Any, **kw: Any) -> None:
        """aiortc's MediaRecorder: decoded caller video and audio, encoded again into MP4."""
        self.recording_path = str(Path(path).with_suffix(".mp4"))
        self.recorder = MediaRecorder(self.recording_path)
        for kind in ("video", "audio"):
            track = self.tracks.get(("caller", kind))
            if track is not None:
                self.recorder.addTrack(self.relay.subscribe(track))
        self.started_at = time.time()
        await self.recorder.start()
        self._emit(None, "recording_started", path=self.recording_path)

    async def stop_recording(self) -> RecordingInfo:
        recorder, self.recorder = self.recorder, None
        assert recorder is not None and self.recording_path is not None
        await recorder.stop()
        path = self.recording_path
        data = await asyncio.to_thread(Path(path).read_bytes)
        info = RecordingInfo(
            path=path,
            duration_s=time.time() - self.started_at,
            video_codec="h264",
            audio_codecs=["aac"],
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            started_at=self.started_at,
            stopped_at=time.time(),
        )
        self._emit(None, "recording_stopped", path=path, sha256=info.sha256)
        return info

    async def snapshot(self, leg_id: str) -> bytes:
        raise NoVideoError("the baseline takes no snapshots")

    async def stats(self) -> dict[str, LegStats]:
        return {}

    async def close(self) -> RecordingInfo | None:
        info = None
        if self.recorder is not None:
            with contextlib.suppress(Exception):
                info = await self.stop_recording()
        for leg_id in list(self.pcs):
            await self.leave(leg_id)
        self._emit(None, "closed")
        return info
