"""Turns the media legs' stats samples into the call-quality metrics.

The hub samples every live room once a period (the same sample feeds the handler's
quality indicator), so sampling costs one ``getStats`` per leg per period and never
touches the relay path. Counters grow by the difference between a leg's cumulative
counts and the last ones seen for that leg; gauges are means over live legs by role.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from statistics import fmean

from appliance import metrics
from media import LegStats

LegKey = tuple[str, str]  # (call, leg)


class QualityMeter:
    def __init__(self) -> None:
        self._last: dict[LegKey, tuple[int, int, int, int, int]] = {}

    def record(self, samples: Iterable[tuple[str, LegStats]]) -> None:
        """One period's samples, ``(call id, leg stats)`` for every live leg."""
        loss: dict[tuple[str, str], list[float]] = defaultdict(list)
        jitter: dict[str, list[float]] = defaultdict(list)
        rtt: dict[str, list[float]] = defaultdict(list)
        fps: dict[str, list[float]] = defaultdict(list)
        seen: set[LegKey] = set()
        for call_id, leg in samples:
            role = leg.role if leg.role in metrics.ROLES else "guest"
            key = (call_id, leg.leg_id)
            seen.add(key)
            now = (
                leg.packets_received,
                leg.packets_sent,
                leg.bytes_received,
                leg.bytes_sent,
                leg.video_holes_skipped,
            )
            before = self._last.get(key, (0, 0, 0, 0, 0))
            # A leg that rejoined starts again from zero: count what it has now.
            grew = [n - b if n >= b else n for n, b in zip(now, before, strict=True)]
            metrics.MEDIA_PACKETS.labels(role, "received").inc(grew[0])
            metrics.MEDIA_PACKETS.labels(role, "sent").inc(grew[1])
            metrics.MEDIA_BYTES.labels(role, "received").inc(grew[2])
            metrics.MEDIA_BYTES.labels(role, "sent").inc(grew[3])
            metrics.MEDIA_HOLES_SKIPPED.labels(role).inc(grew[4])
            self._last[key] = now
            loss[(role, "received")].append(leg.packet_loss_ratio)
            loss[(role, "sent")].append(leg.remote_loss_ratio)
            if leg.jitter_s is not None:
                jitter[role].append(leg.jitter_s)
            if leg.rtt_s is not None:
                rtt[role].append(leg.rtt_s)
            fps[role].append(leg.fps_received)
        for key in set(self._last) - seen:
            del self._last[key]
        for role in metrics.ROLES:
            for direction in metrics.DIRECTIONS:
                metrics.MEDIA_LOSS.labels(role, direction).set(
                    fmean(loss[(role, direction)]) if loss[(role, direction)] else 0.0
                )
            metrics.MEDIA_JITTER.labels(role).set(fmean(jitter[role]) if jitter[role] else 0.0)
            metrics.MEDIA_RTT.labels(role).set(fmean(rtt[role]) if rtt[role] else 0.0)
            metrics.MEDIA_FPS.labels(role).set(fmean(fps[role]) if fps[role] else 0.0)
