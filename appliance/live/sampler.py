"""Every 2 s: each live room's stats to its handler's page and to the metrics, the
queue's length and breaches, calls that both sides abandoned, and callers' rejoin
windows that have run out (``life.close_lapsed_rejoins``).

One sample feeds both the console and Prometheus, so what the handler sees and what
operations graph are the same numbers (docs/monitoring.md measures its cost).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from appliance import metrics
from appliance.config import Settings
from appliance.db import Database
from appliance.live.participants import CALLER, HANDLER, LiveCall
from appliance.live.quality import QualityMeter
from appliance.models import utcnow
from appliance.services.calls import life, states
from media import LegStats
from media.background import spawn

log = logging.getLogger("evr.live")

STATS_INTERVAL_S = 2.0
LATE_S = 0.5
"""A period whose sample came this late (the loop or the media worker busy) tells
nothing about the caller's line (weak_line.py)."""


class Sampler:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        live_calls: dict[str, LiveCall],
        abandon: Callable[[LiveCall], Coroutine[Any, Any, None]],
    ) -> None:
        self.settings = settings
        self.db = db
        self.live_calls = live_calls
        self._abandon = abandon
        self._quality = QualityMeter()
        self._breached: set[str] = set()
        # Per live call: the admitted flag and who was on it besides caller and handler.
        self._attended: dict[str, tuple[bool, dict[str, set[str]]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self, period_s: float = STATS_INTERVAL_S) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._forever(period_s))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _forever(self, period_s: float) -> None:
        while True:
            asleep = time.monotonic()
            await asyncio.sleep(period_s)
            try:
                await self.sample(woke_late=time.monotonic() - asleep - period_s > LATE_S)
            except Exception:
                log.exception("sampling failed")

    def active_calls(self) -> int:
        return sum(1 for live in self.live_calls.values() if live.admitted_at is not None)

    async def sample(self, woke_late: bool = False) -> None:
        """One period: each live room's stats to its handler and to the metrics, and to
        the caller's line's judge; the queue."""
        samples: list[tuple[str, LegStats]] = []
        for live in list(self.live_calls.values()):
            room = live.room
            if room is None:
                continue
            if self.abandoned(live):
                spawn(self._abandon(live))
                continue
            asked = time.monotonic()
            try:
                stats = await room.stats()
            except Exception:
                log.exception("stats failed", extra={"call": live.public_id})
                continue
            late = woke_late or time.monotonic() - asked > LATE_S
            samples.extend((live.public_id, leg) for leg in stats.values())
            await self._judge_the_line(live, stats, late)
            message = {
                "type": "stats",
                "legs": {leg: dataclasses.asdict(s) for leg, s in stats.items()},
                "at": utcnow().isoformat(),
            }
            await live.broadcast(message, (HANDLER,))
        self._quality.record(samples)
        metrics.CALLS_ACTIVE.set(self.active_calls())
        self.count_attendees()
        await asyncio.to_thread(self._sample_queue)
        await asyncio.to_thread(self.close_lapsed_rejoins)

    async def _judge_the_line(self, live: LiveCall, stats: dict[str, LegStats], late: bool) -> None:
        """Sound only by itself when the caller's line cannot carry video (weak_line.py)."""
        caller = next((s for s in stats.values() if s.role == CALLER), None)
        if caller is None or live.admitted_at is None or caller.state != "connected":
            return
        verdict = live.weak_line.observe(
            caller.packets_received,
            caller.packets_lost,
            late,
            live.sound_only,
            live.sound_only_by_box,
        )
        if verdict is not None:
            log.info(
                "caller's line %s video",
                "cannot carry" if verdict else "carries",
                extra={"call": live.public_id},
            )
            await live.switch_sound_only_for_the_line(verdict)

    def count_attendees(self) -> None:
        """Guests, observers and viewers on live calls now (the gauge), and for each call
        that has left the hub, how many of each it had (one observation per role)."""
        now = dict.fromkeys(metrics.ATTENDEE_ROLES, 0)
        for live in list(self.live_calls.values()):
            admitted, seen = self._attended.setdefault(
                live.public_id, (False, {role: set() for role in metrics.ATTENDEE_ROLES})
            )
            if live.admitted_at is not None and not admitted:
                self._attended[live.public_id] = (True, seen)
            for key, participant in list(live.participants.items()):
                if participant.role in now:
                    now[participant.role] += 1
                    seen[participant.role].add(key)
        for role, count in now.items():
            metrics.CALL_ATTENDEES.labels(role).set(count)
        for public_id in [k for k in self._attended if k not in self.live_calls]:
            admitted, seen = self._attended.pop(public_id)
            if admitted:
                for role, keys in seen.items():
                    metrics.CALL_ATTENDEES_PER_CALL.labels(role).observe(len(keys))

    def close_lapsed_rejoins(self) -> None:
        """Read first: the writer's lock is taken only when a window has run out."""
        now = utcnow()
        with self.db.reader() as session:
            if not states.rejoins_lapsed(session, now):
                return
        with self.db.session() as session:
            life.close_lapsed_rejoins(session, self.settings, now)

    def abandoned(self, live: LiveCall) -> bool:
        """Admitted, and both the caller and the handler gone for longer than the setting."""
        return (
            live.admitted_at is not None
            and live.empty_since is not None
            and time.monotonic() - live.empty_since > self.settings.call_abandoned_seconds
        )

    def _sample_queue(self) -> None:
        target = self.settings.queue_target_seconds
        with self.db.reader() as session:
            waiting = states.all_waiting(session)
        now = utcnow()
        waits = {c.public_id: (now - c.waiting_at).total_seconds() for c in waiting if c.waiting_at}
        metrics.QUEUE_LENGTH.set(len(waiting))
        metrics.QUEUE_OLDEST_WAIT.set(max(waits.values(), default=0.0))
        for public_id, waited in waits.items():
            if waited > target and public_id not in self._breached:
                self._breached.add(public_id)
                metrics.QUEUE_BREACHES.inc()
        self._breached &= set(waits)
