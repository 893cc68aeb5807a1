"""The event-loop watchdog names the line that blocked the loop, once per stall."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import REGISTRY

from appliance.watchdog import LoopWatchdog


def stalls() -> float:
    return REGISTRY.get_sample_value("evr_event_loop_stalls_total") or 0.0


def block_the_loop_for(seconds: float) -> None:
    time.sleep(seconds)  # what a synchronous write waiting on SQLite's lock does


async def watch(work: float, block: float) -> list[tuple[float, str]]:
    seen: list[tuple[float, str]] = []
    dog = LoopWatchdog(stall_s=0.3, tick_s=0.05, on_stall=lambda late, at: seen.append((late, at)))
    dog.start()
    beat = asyncio.create_task(dog.beat())
    try:
        await asyncio.sleep(work)
        if block:
            block_the_loop_for(block)
        await asyncio.sleep(work)
    finally:
        beat.cancel()
        dog.stop()
    return seen


def test_a_blocked_loop_is_reported_once_with_the_blocking_line() -> None:
    before = stalls()
    seen = asyncio.run(watch(work=0.2, block=0.9))
    assert len(seen) == 1, seen  # one stall, however many ticks it lasted
    late, stack = seen[0]
    assert late >= 0.3
    assert "block_the_loop_for" in stack and "time.sleep(seconds)" in stack
    assert stalls() == before + 1


def test_a_loop_that_keeps_turning_is_never_reported() -> None:
    before = stalls()
    assert asyncio.run(watch(work=0.6, block=0)) == []
    assert stalls() == before
    assert (REGISTRY.get_sample_value("evr_event_loop_lag_seconds_count") or 0) > 0
