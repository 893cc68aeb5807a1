"""Per-leg statistics from aiortc's getStats() and the relay's own counters."""

from dataclasses import dataclass

from aiortc.stats import (
    RTCInboundRtpStreamStats,
    RTCOutboundRtpStreamStats,
    RTCRemoteInboundRtpStreamStats,
)

from media.leg import Leg

_CLOCK = {"audio": 48000, "video": 90000}


@dataclass(frozen=True)
class LegStats:
    """A leg's health, cheap enough to poll every few seconds.

    ``packets_*``/``bytes_sent`` are RTP counts from aiortc; ``bytes_received`` is
    encoded media payload (aiortc does not count inbound bytes). Loss is the share
    of the leg's packets that never reached the box; ``remote_loss_ratio`` the
    share of ours the leg's browser reports missing. ``jitter_s`` is the worst
    inbound stream's; ``rtt_s`` comes from RTCP receiver reports (``None`` until the
    first one). ``video_holes_skipped`` counts gaps in the leg's video that no
    retransmission filled and the box stepped over (loss beyond what NACK repairs).
    ``packets_lost`` is the count behind ``packet_loss_ratio`` (cumulative).
    """

    leg_id: str
    role: str
    state: str
    packets_sent: int
    packets_received: int
    bytes_sent: int
    bytes_received: int
    packet_loss_ratio: float
    remote_loss_ratio: float
    jitter_s: float | None
    rtt_s: float | None
    fps_received: float
    video_codec: str | None
    video_size: tuple[int, int] | None
    keyframe_requests: int
    video_holes_skipped: int = 0
    packets_lost: int = 0


async def collect(leg: Leg) -> LegStats:
    """Build :class:`LegStats` for ``leg`` (no I/O: aiortc keeps these in memory)."""
    report = await leg.peer.pc.getStats()
    sent = received = bytes_sent = lost = remote_lost = remote_total = 0
    jitters: list[float] = []
    rtts: list[float] = []
    for stats in report.values():
        if isinstance(stats, RTCInboundRtpStreamStats):
            received += stats.packetsReceived
            lost += max(stats.packetsLost, 0)
            jitters.append(stats.jitter / _CLOCK.get(stats.kind, 90000))
        elif isinstance(stats, RTCOutboundRtpStreamStats):
            sent += stats.packetsSent
            bytes_sent += stats.bytesSent
        elif isinstance(stats, RTCRemoteInboundRtpStreamStats):
            remote_lost += max(stats.packetsLost, 0)
            remote_total += stats.packetsReceived + max(stats.packetsLost, 0)
            if stats.roundTripTime is not None:
                rtts.append(stats.roundTripTime)
    video = leg.video_source()
    return LegStats(
        leg_id=leg.leg_id,
        role=leg.role,
        state=leg.state,
        packets_sent=sent,
        packets_received=received,
        bytes_sent=bytes_sent,
        bytes_received=sum(s.bytes for s in leg.peer.sources),
        packet_loss_ratio=round(lost / (received + lost), 4) if received + lost else 0.0,
        remote_loss_ratio=round(remote_lost / remote_total, 4) if remote_total else 0.0,
        jitter_s=round(max(jitters), 4) if jitters else None,
        rtt_s=round(max(rtts), 4) if rtts else None,
        fps_received=video.fps() if video is not None else 0.0,
        video_codec=leg.peer.video_codec(),
        video_size=video.size if video is not None else None,
        keyframe_requests=sum(s.keyframe_requests for s in leg.peer.sources),
        video_holes_skipped=video.holes_skipped if video is not None else 0,
        packets_lost=lost,
    )
