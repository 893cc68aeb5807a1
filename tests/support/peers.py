"""Browser stand-ins for the media tests: real aiortc peers with synthetic media.

Each client gathers only a 127.0.0.1 candidate and uses no ICE server, so every
test talks to this machine alone.
"""

import asyncio
import contextlib
import fractions
import math
import struct
import time
from collections.abc import Callable

import av
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from media import RoomEvent, passthrough

WIDTH, HEIGHT = 640, 480
VIDEO_CLOCK = 90000
AUDIO_RATE = 48000


class PatternVideoTrack(MediaStreamTrack):
    """640x480 frames of a scrolling gradient, paced at ``fps``."""

    kind = "video"

    def __init__(self, fps: int = 15, width: int = WIDTH, height: int = HEIGHT) -> None:
        super().__init__()
        self.fps = fps
        self.width = width
        self.height = height
        rows = height + 256
        self._luma = b"".join(
            bytes((c + r * 3 + (c * r) // 97) % 256 for c in range(width)) for r in range(rows)
        )
        self._chroma = bytes([128]) * ((width // 2) * (height // 2))
        self._n = 0
        self._start: float | None = None
        self.frames_sent = 0

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._n / self.fps
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        offset = (self._n * 4) % 256 * self.width
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        frame.planes[0].update(self._luma[offset : offset + self.width * self.height])
        frame.planes[1].update(self._chroma)
        frame.planes[2].update(self._chroma)
        frame.pts = self._n * VIDEO_CLOCK // self.fps
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._n += 1
        self.frames_sent += 1
        return frame


class ToneAudioTrack(MediaStreamTrack):
    """A 400 Hz sine at 48 kHz, 20 ms mono frames."""

    kind = "audio"
    SAMPLES = 960

    def __init__(self, hz: int = 400) -> None:
        super().__init__()
        samples = [int(8000 * math.sin(2 * math.pi * hz * i / AUDIO_RATE)) for i in range(960)]
        self._pcm = struct.pack(f"<{self.SAMPLES}h", *samples)
        self._n = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._n * self.SAMPLES / AUDIO_RATE
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        frame = av.AudioFrame(format="s16", layout="mono", samples=self.SAMPLES)
        frame.planes[0].update(self._pcm)
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._n * self.SAMPLES
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._n += 1
        return frame


class Client:
    """A stand-in for a phone or handler browser.

    ``video``: send the pattern; otherwise offer a recvonly video transceiver, as a
    browser without a camera does. Counts what it decodes from the server. Max-bundle
    like a browser's offer (aiortc's balanced policy strands a second transceiver of
    one kind on a transport that bundling stops).
    """

    def __init__(
        self, name: str, *, video: bool = True, audio: bool = True, video_codec: str | None = None
    ) -> None:
        self.name = name
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.video_track = PatternVideoTrack() if video else None
        self.audio_track = ToneAudioTrack() if audio else None
        self.video_frames = 0
        self.audio_frames = 0
        self.video_size: tuple[int, int] | None = None
        self.frames_by_mid: dict[str, int] = {}
        self.answers = 0  # answers applied: more than one means the client was renegotiated
        self._tasks: list[asyncio.Task[None]] = []
        if self.audio_track is not None:
            self.pc.addTrack(self.audio_track)
        else:
            self.pc.addTransceiver("audio", direction="recvonly")
        if self.video_track is not None:
            sender = self.pc.addTrack(self.video_track)
            transceiver = next(t for t in self.pc.getTransceivers() if t.sender is sender)
        else:
            transceiver = self.pc.addTransceiver("video", direction="recvonly")
        if video_codec is not None:
            caps = RTCRtpSender.getCapabilities("video").codecs
            transceiver.setCodecPreferences(
                [c for c in caps if c.mimeType.lower() == video_codec.lower()]
            )
        self.video_transceiver = transceiver
        self.pc.on("track", self._on_track)

    @property
    def video_sender(self) -> RTCRtpSender:
        return self.video_transceiver.sender

    async def offer(self) -> str:
        passthrough.gather_loopback(self.pc, only=True)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    def receive_slots(self, count: int) -> None:
        """``count`` more receive-only audio and video pairs, as a page offers for guests."""
        for _ in range(count):
            self.pc.addTransceiver("audio", direction="recvonly")
            self.pc.addTransceiver("video", direction="recvonly")

    def audio_mids(self) -> list[str]:
        return [t.mid for t in self.pc.getTransceivers() if t.kind == "audio" and t.mid]

    async def accept(self, answer_sdp: str) -> None:
        self.answers += 1
        await self.pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, MediaStreamError):
                await task
        await self.pc.close()

    def _on_track(self, track: MediaStreamTrack) -> None:
        mid = next(t.mid for t in self.pc.getTransceivers() if t.receiver.track is track)
        self._tasks.append(asyncio.ensure_future(self._consume(track, mid)))

    async def _consume(self, track: MediaStreamTrack, mid: str) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                self.frames_by_mid[mid] = self.frames_by_mid.get(mid, 0) + 1
                if track.kind == "video":
                    self.video_frames += 1
                    self.video_size = (frame.width, frame.height)
                else:
                    self.audio_frames += 1


async def until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Wait until ``predicate()`` holds, failing the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(0.05)


async def connect(room, client: Client, leg_id: str, role: str) -> None:  # type: ignore[no-untyped-def]
    """Join ``client`` to ``room`` as ``leg_id`` and apply the answer."""
    answer = await room.join(leg_id=leg_id, role=role, offer_sdp=await client.offer())
    await client.accept(answer)


def count_pli(sender: RTCRtpSender) -> Callable[[], int]:
    """Count keyframe requests (PLI/FIR) that reach a client's sender."""
    calls = [0]
    original = sender._send_keyframe

    def send_keyframe() -> None:
        calls[0] += 1
        original()

    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]
    return lambda: calls[0]


class Events(list[RoomEvent]):
    """What a room reported, in order: the `events` fixture passes `append` as its `on_event`."""

    def kinds(self, leg_id: str | None = None) -> list[str]:
        return [e.kind for e in self if leg_id is None or e.leg_id == leg_id]
