"""Forwarding encoded media from one leg to others without decoding it.

A :class:`Source` sits on one receiver of one leg and fans its encoded frames out
to sinks: :class:`ForwardTrack` (what another leg's sender sends), the recorder and
the snapshot buffer. A ForwardTrack hands the sender ``av.Packet`` objects, which
aiortc packs into RTP as they are; only when the destination negotiated another
codec does it decode, and the sender then encodes as aiortc always does.
"""

import asyncio
import fractions
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import av
from aiortc import MediaStreamTrack, RTCRtpReceiver
from aiortc.codecs import get_decoder
from aiortc.codecs.base import Decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av.frame import Frame
from av.stream import Stream

from media import codecs, passthrough

logger = logging.getLogger(__name__)

KEYFRAME_REQUEST_INTERVAL_S = 0.3
REMB_TTL_S = 5.0


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One whole encoded frame as it arrived from a leg.

    ``timestamp`` is in RTP clock units, counted from the source's first frame
    (aiortc unwraps the 32-bit RTP timestamp); ``arrival`` is ``time.monotonic()``.
    """

    kind: str
    codec: RTCRtpCodecParameters
    data: bytes
    timestamp: int
    keyframe: bool
    arrival: float

    @property
    def mime(self) -> str:
        return codecs.mime(self.codec)


class Sink(Protocol):
    """Anything that takes a source's encoded frames."""

    def push(self, frame: EncodedFrame) -> None: ...


class Source:
    """Encoded media arriving on one receiver of one leg, fanned out to sinks.

    Keyframe requests from any sink go upstream as one RTCP PLI, at most every
    ``KEYFRAME_REQUEST_INTERVAL_S`` (a request inside the interval is sent at its
    end, never dropped). REMB figures from downstream senders cap the REMB this
    receiver sends upstream.
    """

    def __init__(
        self,
        leg_id: str,
        kind: str,
        receiver: RTCRtpReceiver,
        on_first_frame: Callable[["Source", EncodedFrame], None] | None = None,
    ) -> None:
        self.leg_id = leg_id
        self.kind = kind
        self.receiver = receiver
        self.codec: RTCRtpCodecParameters | None = None
        self.size: tuple[int, int] | None = None
        self.frames = 0
        self.bytes = 0
        self.keyframes = 0
        self.keyframe_requests = 0
        self.last_arrival: float | None = None
        self._sinks: list[Sink] = []
        self._arrivals: deque[float] = deque(maxlen=90)
        self._on_first_frame = on_first_frame
        self._last_request = 0.0
        self._request_pending: asyncio.TimerHandle | None = None
        self._remb: dict[int, tuple[int, float]] = {}
        self.tap = passthrough.tap_receiver(receiver, self._on_frame)
        self._skipper = passthrough.hole_skipper(receiver)
        self._holes_seen = 0
        self._resync = False
        self._push_remb = passthrough.cap_remb(receiver, self.remb_cap)

    def subscribe(self, sink: Sink) -> None:
        if sink not in self._sinks:
            self._sinks.append(sink)

    def unsubscribe(self, sink: Sink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)
        self._remb.pop(id(sink), None)

    def close(self) -> None:
        self._sinks.clear()
        self.tap.handler = lambda codec, frame: None
        if self._request_pending is not None:
            self._request_pending.cancel()

    @property
    def holes_skipped(self) -> int:
        """Gaps in the video no retransmission filled, stepped over (0 for audio)."""
        return self._skipper.holes_skipped if self._skipper is not None else 0

    def follow_round_trip(self, rtt_s: float | None) -> None:
        """The leg's measured round trip sets how often a video hole is asked for again."""
        if self._skipper is not None:
            self._skipper.follow_round_trip(rtt_s)

    def fps(self, window_s: float = 2.0) -> float:
        """Frames per second over the last ``window_s`` seconds."""
        now = time.monotonic()
        recent = [t for t in self._arrivals if now - t <= window_s]
        if len(recent) < 2:
            return 0.0
        span = max(now - recent[0], 1e-3)
        return round(len(recent) / span, 2)

    def request_keyframe(self) -> None:
        """Ask the leg's sender for a keyframe (video only), rate-limited."""
        if self.kind != "video" or self._request_pending is not None:
            return
        wait = self._last_request + KEYFRAME_REQUEST_INTERVAL_S - time.monotonic()
        if wait > 0:
            loop = asyncio.get_running_loop()
            self._request_pending = loop.call_later(wait, self._send_keyframe_request)
            return
        self._send_keyframe_request()

    def _send_keyframe_request(self) -> None:
        self._request_pending = None
        self._last_request = time.monotonic()
        if passthrough.send_pli(self.receiver):
            self.keyframe_requests += 1

    def report_remb(self, sink: Sink, bitrate: int) -> None:
        """A downstream sender heard REMB ``bitrate`` for media from this source."""
        before = self.remb_cap()
        self._remb[id(sink)] = (bitrate, time.monotonic())
        after = self.remb_cap()
        if after is not None and (before is None or after < before):
            self._push_remb()

    def remb_cap(self) -> int | None:
        """The lowest bitrate downstream receivers reported in the last few seconds."""
        now = time.monotonic()
        live = [b for b, at in self._remb.values() if now - at <= REMB_TTL_S]
        return min(live) if live else None

    def _on_frame(self, codec: RTCRtpCodecParameters, jitter_frame: JitterFrame) -> None:
        now = time.monotonic()
        mime = codecs.mime(codec)
        data = jitter_frame.data
        if self._broken(codecs.is_keyframe(mime, data)):
            return
        frame = EncodedFrame(
            kind=self.kind,
            codec=codec,
            data=data,
            timestamp=jitter_frame.timestamp,
            keyframe=codecs.is_keyframe(mime, data),
            arrival=now,
        )
        first = self.frames == 0
        self.codec = codec
        self.frames += 1
        self.bytes += len(data)
        self.last_arrival = now
        self._arrivals.append(now)
        if frame.keyframe and self.kind == "video":
            self.keyframes += 1
            size = codecs.vp8_size(data) if mime == codecs.VP8 else None
            if size is not None:
                self.size = size
        for sink in list(self._sinks):
            try:
                sink.push(frame)
            except Exception:
                logger.exception("sink %r failed", sink)
        if first and self._on_first_frame is not None:
            self._on_first_frame(self, frame)

    def _broken(self, keyframe: bool) -> bool:
        """After the jitter buffer stepped over a hole, what follows refers to pictures
        that never came: nothing goes on (to the other legs, the recording, snapshots)
        until the keyframe that was asked for, so no browser decodes a broken picture."""
        if self._skipper is not None and self._skipper.holes_skipped != self._holes_seen:
            self._holes_seen = self._skipper.holes_skipped
            self._resync = True
        if self._resync and not keyframe:
            self.request_keyframe()
            return True
        self._resync = False
        return False


class ForwardTrack(MediaStreamTrack):
    """What a leg's sender sends: another leg's media, encoded as it arrived.

    It yields nothing until a source is attached and the sender starts pulling,
    so a caller's answer can carry outgoing audio and video before any handler
    exists. Video waits for a keyframe after every (re)attach; timestamps are
    rebased so a change of source (a leg rejoining) looks continuous downstream.
    ``target_codec`` is what the destination negotiated: frames in another codec
    are decoded here and re-encoded by aiortc's sender (the fallback path).
    """

    MAX_QUEUE = {"audio": 50, "video": 60}

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.target_codec: RTCRtpCodecParameters | None = None
        self.frames_forwarded = 0
        self.frames_transcoded = 0
        self.frames_dropped = 0
        self.keyframe_requests = 0
        self._source: Source | None = None
        self._queue: asyncio.Queue[EncodedFrame] = asyncio.Queue()
        self._consuming = False
        self._need_keyframe = kind == "video"
        self._offset: int | None = None
        self._offset_clock = 0
        self._last_out: tuple[float, float] | None = None
        self._decoder: Decoder | None = None
        self._decoder_mime = ""
        self._decoded: deque[Frame] = deque()

    @property
    def source(self) -> Source | None:
        return self._source

    def attach(self, source: Source | None) -> None:
        """Send ``source``'s media from now on (``None``: send nothing)."""
        if source is self._source:
            return
        if self._source is not None:
            self._source.unsubscribe(self)
        self._source = source
        self._offset = None
        self._need_keyframe = self.kind == "video"
        self._clear()
        if source is not None:
            source.subscribe(self)
            if self._consuming:
                source.request_keyframe()

    def request_keyframe(self) -> None:
        """The destination asked for a keyframe: pass it upstream unless we encode."""
        self.keyframe_requests += 1
        if self._source is not None and not self._transcoding(self._source.codec):
            self._source.request_keyframe()

    def push(self, frame: EncodedFrame) -> None:
        if not self._consuming or self.readyState != "live":
            return
        if self._need_keyframe:
            if not frame.keyframe:
                self.frames_dropped += 1
                if self._source is not None:
                    self._source.request_keyframe()
                return
            self._need_keyframe = False
        if self._queue.qsize() >= self.MAX_QUEUE[self.kind]:
            self.frames_dropped += self._queue.qsize()
            self._clear()
            if self.kind == "video":
                self._need_keyframe = True
                if self._source is not None:
                    self._source.request_keyframe()
                return
        self._queue.put_nowait(frame)

    async def recv(
        self,
    ) -> "av.Packet[Stream] | Frame":  # PyAV's Packet is generic only in its stubs
        if not self._consuming:
            self._consuming = True
            if self._source is not None:
                self._source.request_keyframe()
        while True:
            if self._decoded:
                return self._decoded.popleft()
            frame = await self._queue.get()
            pts = self._rebase(frame)
            if not self._transcoding(frame.codec):
                packet = av.Packet(frame.data)
                packet.pts = pts
                packet.dts = pts
                packet.time_base = fractions.Fraction(1, frame.codec.clockRate)
                self.frames_forwarded += 1
                return packet
            for decoded in await self._decode(frame, pts):
                self._decoded.append(decoded)

    def stop(self) -> None:
        self.attach(None)
        super().stop()

    def _transcoding(self, codec: RTCRtpCodecParameters | None) -> bool:
        return (
            codec is not None
            and self.target_codec is not None
            and not codecs.same_codec(codec, self.target_codec)
        )

    async def _decode(self, frame: EncodedFrame, pts: int) -> list[Frame]:
        if self._decoder is None or self._decoder_mime != frame.mime:
            self._decoder = get_decoder(frame.codec)
            self._decoder_mime = frame.mime
        decoder = self._decoder
        loop = asyncio.get_running_loop()
        try:
            frames = await loop.run_in_executor(
                None, decoder.decode, JitterFrame(data=frame.data, timestamp=pts)
            )
        except av.FFmpegError as exc:
            logger.warning("fallback decode of %s failed: %s", frame.mime, exc)
            if self._source is not None:
                self._source.request_keyframe()
            return []
        self.frames_transcoded += len(frames)
        return list(frames)

    def _rebase(self, frame: EncodedFrame) -> int:
        clock = frame.codec.clockRate
        if self._offset is None or self._offset_clock != clock:
            start_s = 0.0
            if self._last_out is not None:
                last_s, at = self._last_out
                start_s = last_s + max(time.monotonic() - at, 0.02)
            self._offset = round(start_s * clock) - frame.timestamp
            self._offset_clock = clock
        pts = frame.timestamp + self._offset
        self._last_out = (pts / clock, time.monotonic())
        return pts

    def _clear(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
        self._decoded.clear()
