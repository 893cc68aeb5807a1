"""The one place that touches aiortc (and aioice) internals.

aiortc has no public hook for encoded media on the receiving side, for keyframe
requests or REMB arriving at a sender, or for gathering loopback candidates. Every
private name the media plane relies on is used in this module and nowhere else;
on an aiortc upgrade, re-check each function here against the new source (the
list is in docs/media.md) and then move ``SUPPORTED`` on.

Everything is per object (a receiver, a sender, a peer connection): nothing here
patches a module-level name, so other peer connections in the process, and the
decoding path, behave exactly as aiortc ships them.
"""

import logging
import queue
import time
from collections.abc import Callable
from importlib.metadata import version

import aioice
import aiortc
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs import is_rtx
from aiortc.codecs.opus import OpusEncoder
from aiortc.jitterbuffer import MAX_MISORDER, JitterBuffer, JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
)
from aiortc.utils import uint16_add

from media.background import spawn

logger = logging.getLogger(__name__)

SUPPORTED = {"aiortc": "1.16.", "aioice": "0.13."}


def _check_versions() -> None:
    found = {"aiortc": aiortc.__version__, "aioice": version("aioice")}
    for name, prefix in SUPPORTED.items():
        if not found[name].startswith(prefix):
            raise ImportError(
                f"media.passthrough is written against {name} {prefix}x but {found[name]} is "
                "installed: re-check every hook in media/passthrough.py against its source "
                "(see docs/media.md) before changing SUPPORTED"
            )
    needed = {
        RTCRtpReceiver: ("_send_rtcp", "_send_rtcp_pli", "_send_rtcp_nack", "_handle_rtp_packet"),
        RTCRtpSender: ("_send_keyframe", "_handle_rtcp_packet", "_next_encoded_frame"),
        aioice.Connection: ("get_component_candidates",),
    }
    for cls, names in needed.items():
        missing = [n for n in names if not hasattr(cls, n)]
        if missing:
            raise ImportError(f"{cls.__name__} lacks {missing}: aiortc internals changed")
    buffer = JitterBuffer(capacity=4, is_video=True)
    fields = ("_origin", "_packets", "_capacity", "_is_video")
    missing = [n for n in fields if not hasattr(buffer, n)]
    if missing:
        raise ImportError(f"JitterBuffer lacks {missing}: aiortc internals changed")


_check_versions()

FrameHandler = Callable[[RTCRtpCodecParameters, JitterFrame], None]
# A hole in the video is asked for again every round trip and a half (the leg's RTT, as
# the box's RTCP receiver reports measure it; 40 ms, about a phone on 4G, until one has
# come), within these bounds, until it fills or is skipped.
RENACK_S = 0.04
RENACK_BOUNDS_S = (0.02, 0.25)
MAX_RENACK = 64
# What aiortc puts on a receiver's decoder queue: a whole frame, or None to stop.
DecoderItem = tuple[RTCRtpCodecParameters, JitterFrame] | None

_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_DECODER_THREAD = "_RTCRtpReceiver__decoder_thread"
_RTCP_SSRC = "_RTCRtpReceiver__rtcp_ssrc"
_ENCODER = "_RTCRtpSender__encoder"
_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"


class ReceiverTap(queue.Queue[DecoderItem]):
    """Stands in for a receiver's decoder queue and takes encoded frames off it.

    ``RTCRtpReceiver._handle_rtp_packet`` puts ``(codec, JitterFrame)`` on this
    queue on the event loop once the jitter buffer has a whole frame. The tap hands
    it to ``handler`` there and then, so the frame is never decoded; ``None`` (the
    receiver stopping) still reaches aiortc's idle decoder thread so it exits.
    """

    def __init__(self, handler: FrameHandler) -> None:
        super().__init__()
        self.handler = handler
        self.frames_tapped = 0

    def put(self, item: DecoderItem, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(item, block, timeout)
            return
        codec, frame = item
        self.frames_tapped += 1
        try:
            self.handler(codec, frame)
        except Exception:
            logger.exception("encoded frame handler failed")


def tap_receiver(receiver: RTCRtpReceiver, handler: FrameHandler) -> ReceiverTap:
    """Divert ``receiver``'s encoded frames to ``handler`` instead of its decoder.

    Must run before ``receiver.receive()`` starts the decoder thread, i.e. between
    ``setRemoteDescription`` and the connection coming up; installing it twice
    returns the first tap with its handler replaced.
    """
    current = getattr(receiver, _DECODER_QUEUE)
    if isinstance(current, ReceiverTap):
        current.handler = handler
        return current
    if getattr(receiver, _DECODER_THREAD) is not None:
        raise RuntimeError("receiver already started: its frames go to aiortc's decoder")
    tap = ReceiverTap(handler)
    setattr(receiver, _DECODER_QUEUE, tap)
    return tap


class HoleSkippingJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer, but a hole that stays unfilled is stepped over.

    aiortc assembles frames only from the buffer's origin onwards and waits at the first
    missing packet until 512 more have arrived (about ten seconds of a phone's video).
    Packets a NACK cannot bring back (the sender's history has moved on, as after a few
    seconds' outage, or the retransmission was lost too) therefore froze the picture
    long after the line was good again. Here a hole that has not filled after
    ``wait_s`` (time for a NACK's round trip and a retransmission) is skipped: what sits
    before and after it of the frames it broke is dropped, assembly carries on at the
    next whole frame, and the sender is asked for a keyframe (the returned PLI flag),
    since what follows refers to pictures that never arrived.

    Meanwhile the hole is asked for again every ``renack_s`` (``renack(ssrc, seqs)``
    sends the NACK): aiortc asks once, when it sees the gap, so a lost NACK or a lost
    retransmission (each as likely as the loss that made the hole) left the hole to
    the skip, a keyframe and a freeze.
    """

    def __init__(
        self,
        capacity: int,
        wait_s: float,
        renack: Callable[[int, list[int]], None] | None = None,
        renack_s: float = RENACK_S,
    ) -> None:
        super().__init__(capacity=capacity, is_video=True)
        self.wait_s = wait_s
        self.renack = renack
        self.renack_s = renack_s
        self.holes_skipped = 0
        self.nacks_repeated = 0
        self._hole: int | None = None
        self._hole_since = 0.0
        self._nacked_at = 0.0

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        if self._origin is not None:
            behind = uint16_add(self._origin, -packet.sequence_number)
            if 0 < behind <= self._capacity:
                # Late (a retransmission of what was stepped over): aiortc would restart
                # the buffer at it past 100 behind, and old frames would follow new ones.
                return False, None
        pli, frame = super().add(packet)
        if frame is not None:
            self._hole = None
            return pli, frame
        hole = self._first_hole(packet.sequence_number)
        now = time.monotonic()
        if hole != self._hole:
            self._hole, self._hole_since, self._nacked_at = hole, now, now
        if hole is None:
            return pli, frame
        if now - self._hole_since < self.wait_s:
            if self.renack is not None and now - self._nacked_at >= self.renack_s:
                self._nacked_at = now
                self.nacks_repeated += 1
                self.renack(packet.ssrc, self._missing(hole, packet.sequence_number))
            return pli, frame
        if not self._skip_past(hole, packet.sequence_number):
            return pli, frame  # the broken frame's end has not arrived yet
        self._hole = None
        self.holes_skipped += 1
        return True, self._remove_frame(packet.sequence_number)

    def follow_round_trip(self, rtt_s: float | None) -> None:
        """Ask again every round trip and a half of the leg's line: sooner asks twice
        for a packet already on its way, on the caller's uplink; later leaves the
        picture waiting."""
        if rtt_s is not None:
            low, high = RENACK_BOUNDS_S
            self.renack_s = min(max(1.5 * rtt_s, low), high)

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        """The frame at the origin, once whole: at its last packet (the RTP marker, RFC
        7741 and RFC 6184), or, as aiortc waits for, when the next frame's first packet
        comes. aiortc's wait alone held every frame one frame interval at each hop
        through the box, and a NACK's round trip when that next packet was lost."""
        assert self._origin is not None
        packets: list[RtpPacket] = []
        for count in range(self._capacity):
            packet = self._packets[uint16_add(self._origin, count) % self._capacity]
            if packet is None:
                return None
            if packets and packet.timestamp != packets[0].timestamp:
                break
            packets.append(packet)
            if packet.marker:
                count += 1
                break
        else:
            return None
        data = b"".join(p._data for p in packets)  # type: ignore[attr-defined]
        self.remove(count)
        return JitterFrame(data=data, timestamp=packets[0].timestamp)

    def _first_hole(self, newest: int) -> int | None:
        """The sequence number of the first missing packet before ``newest``, if any."""
        if self._origin is None:
            return None
        for count in range(uint16_add(newest, -self._origin)):
            seq = uint16_add(self._origin, count)
            if self._packets[seq % self._capacity] is None:
                return seq
        return None

    def _missing(self, hole: int, newest: int) -> list[int]:
        """The sequence numbers still missing from ``hole`` up to ``newest`` (at most
        ``MAX_RENACK``, the oldest first: those hold the picture up)."""
        missing = []
        for count in range(uint16_add(newest, -hole)):
            seq = uint16_add(hole, count)
            if self._packets[seq % self._capacity] is None:
                missing.append(seq)
                if len(missing) == MAX_RENACK:
                    break
        return missing

    def _skip_past(self, hole: int, newest: int) -> bool:
        """Move the origin past ``hole`` and the frame it cut: just after the first
        frame end (RTP marker) that arrived after it. False if none has arrived yet."""
        assert self._origin is not None
        for count in range(1, uint16_add(newest, -hole) + 1):
            seq = uint16_add(hole, count)
            packet = self._packets[seq % self._capacity]
            if packet is not None and packet.marker:
                self.remove(uint16_add(seq, 1 - self._origin))
                return True
        return False


def skip_holes(receiver: RTCRtpReceiver, wait_s: float) -> HoleSkippingJitterBuffer:
    """Give a video ``receiver`` a jitter buffer that steps over holes after ``wait_s``,
    asking again for what is missing meanwhile.

    Must run before the first packet arrives (packets buffered by the old one would be
    lost); installing it twice changes the wait of the first.
    """
    current = getattr(receiver, _JITTER_BUFFER)
    if isinstance(current, HoleSkippingJitterBuffer):
        current.wait_s = wait_s
        return current
    if current._origin is not None:
        raise RuntimeError("receiver already has packets in its jitter buffer")
    if not current._is_video:
        raise ValueError("only a video receiver's jitter buffer waits for missing packets")

    def renack(ssrc: int, lost: list[int]) -> None:
        spawn(receiver._send_rtcp_nack(ssrc, lost))

    buffer = HoleSkippingJitterBuffer(current.capacity, wait_s, renack)
    setattr(receiver, _JITTER_BUFFER, buffer)
    return buffer


class PassingAudioBuffer(JitterBuffer):
    """An audio receiver's buffer for the relay: each packet is a whole Opus frame and
    goes on as it arrives (a late or repeated one is dropped); the receiving browser's
    own jitter buffer paces, reorders and conceals.

    aiortc's audio buffer is built for its decoder: it holds four frames before giving
    the first and waits at a missing packet until sixteen more have come. Through the
    box that added 80 ms to every word and 320 ms at every lost packet, and the
    console's lip sync held the caller's picture back to match.
    """

    def __init__(self) -> None:
        super().__init__(capacity=16)
        self._newest: int | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        if self._newest is not None:
            behind = uint16_add(self._newest, -packet.sequence_number)
            if behind < MAX_MISORDER:
                return False, None  # late or repeated; far behind is a sender restarted
        self._newest = packet.sequence_number
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)  # type: ignore[attr-defined]


def pass_audio(receiver: RTCRtpReceiver) -> PassingAudioBuffer:
    """Give an audio ``receiver`` a buffer that passes each packet on as it arrives.

    Must run before the first packet arrives; installing it twice keeps the first.
    """
    current = getattr(receiver, _JITTER_BUFFER)
    if isinstance(current, PassingAudioBuffer):
        return current
    if current._is_video:
        raise ValueError("a video frame spans packets: only audio is passed on packet by packet")
    if current._origin is not None:
        raise RuntimeError("receiver already has packets in its jitter buffer")
    buffer = PassingAudioBuffer()
    setattr(receiver, _JITTER_BUFFER, buffer)
    return buffer


def hole_skipper(receiver: RTCRtpReceiver) -> HoleSkippingJitterBuffer | None:
    """The hole-skipping jitter buffer on ``receiver``, if it has one."""
    current = getattr(receiver, _JITTER_BUFFER)
    return current if isinstance(current, HoleSkippingJitterBuffer) else None


def receiver_tap(receiver: RTCRtpReceiver) -> ReceiverTap | None:
    """The tap on ``receiver``, if any (tests use it to prove nothing was decoded)."""
    current = getattr(receiver, _DECODER_QUEUE)
    return current if isinstance(current, ReceiverTap) else None


def media_ssrcs(receiver: RTCRtpReceiver) -> list[int]:
    """SSRCs the remote end has recently sent on ``receiver`` (from public state)."""
    return [s.source for s in receiver.getSynchronizationSources()]


def send_pli(receiver: RTCRtpReceiver) -> bool:
    """Ask the remote sender behind ``receiver`` for a keyframe (RTCP PLI).

    Returns False when nothing has arrived yet (no SSRC to address).
    """
    ssrcs = media_ssrcs(receiver)
    for ssrc in ssrcs:
        spawn(receiver._send_rtcp_pli(ssrc))
    return bool(ssrcs)


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` whenever the far end asks ``sender`` for a keyframe (PLI/FIR).

    aiortc only sets a flag its encoder reads; a sender that packs forwarded frames
    never reads it, so the request has to travel to the leg the frames come from.
    aiortc's own handling is kept for the transcoding path.
    """
    original = sender._send_keyframe

    def send_keyframe() -> None:
        original()
        callback()

    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]


def on_remb(sender: RTCRtpSender, callback: Callable[[int], None]) -> None:
    """Call ``callback(bitrate_bps)`` when the far end sends REMB about ``sender``."""
    original = sender._handle_rtcp_packet

    async def handle_rtcp_packet(packet: AnyRtcpPacket) -> None:
        await original(packet)
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            if sender._ssrc in ssrcs:
                callback(bitrate)

    sender._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]


def cap_remb(receiver: RTCRtpReceiver, cap: Callable[[], int | None]) -> Callable[[], None]:
    """Clamp the REMB ``receiver`` sends upstream to ``cap()`` bits per second.

    aiortc's receiver estimates the bandwidth of its own hop only. Where the media
    is forwarded, the sender must not exceed what the slowest downstream hop takes,
    so the estimate is lowered to the downstream REMB. Returns a function that
    sends a clamped REMB at once (used when the downstream figure drops).
    """
    original = receiver._send_rtcp
    last: dict[str, int] = {}

    async def send_rtcp(packet: AnyRtcpPacket) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                bitrate, ssrcs = 0, []
            if ssrcs:
                last["bitrate"] = bitrate
                limit = cap()
                if limit is not None and limit < bitrate:
                    packet = RtcpPsfbPacket(
                        fmt=RTCP_PSFB_APP,
                        ssrc=packet.ssrc,
                        media_ssrc=0,
                        fci=pack_remb_fci(limit, ssrcs),
                    )
        await original(packet)

    receiver._send_rtcp = send_rtcp  # type: ignore[method-assign]

    def push_now() -> None:
        limit = cap()
        rtcp_ssrc = getattr(receiver, _RTCP_SSRC)
        ssrcs = media_ssrcs(receiver)
        if limit is None or rtcp_ssrc is None or not ssrcs:
            return
        if "bitrate" in last and limit >= last["bitrate"]:
            return
        packet = RtcpPsfbPacket(
            fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(limit, ssrcs)
        )
        spawn(original(packet))

    return push_now


def negotiated_codec(transceiver: RTCRtpTransceiver) -> RTCRtpCodecParameters | None:
    """The codec aiortc sends with on ``transceiver`` (the first non-RTX one negotiated)."""
    return next((c for c in transceiver._codecs if not is_rtx(c)), None)


def encoder_used(sender: RTCRtpSender) -> bool:
    """Whether ``sender`` has encoded any raw frame (False while it only packs)."""
    encoder = getattr(sender, _ENCODER)
    if encoder is None:
        return False
    if isinstance(encoder, OpusEncoder):
        return encoder.first_packet_pts is not None
    return getattr(encoder, "codec", None) is not None


def gather_loopback(pc: RTCPeerConnection, only: bool = False) -> None:
    """Make ``pc`` gather a 127.0.0.1 host candidate (``only``: nothing else).

    aioice leaves loopback out of host addresses; a box tested in a network
    namespace, or clients and server on one host, have nothing else. Call after
    ``setRemoteDescription`` / ``addTransceiver`` and before ``setLocalDescription``
    (which gathers).
    """
    seen: set[int] = set()
    for transceiver in pc.getTransceivers():
        connection = transceiver.receiver.transport.transport.iceGatherer._connection
        if id(connection) in seen or getattr(connection, "_evr_loopback", False):
            continue
        seen.add(id(connection))
        _add_loopback(connection, only)


def _add_loopback(connection: aioice.Connection, only: bool) -> None:
    original = connection.get_component_candidates

    async def get_component_candidates(
        component: int,
        addresses: list[str],
        timeout: int = 5,  # noqa: ASYNC109 (aioice's own)
    ) -> list[aioice.Candidate]:
        wanted = ["127.0.0.1"] if only else [*addresses, "127.0.0.1"]
        return await original(component=component, addresses=wanted, timeout=timeout)

    connection.get_component_candidates = get_component_candidates  # type: ignore[method-assign]
    connection._evr_loopback = True  # type: ignore[attr-defined]
