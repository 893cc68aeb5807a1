"""The event-loop watchdog names the line that blocked the loop, once per stall."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from prometheus_client import REGISTRY

from appliance.watchdog import LoopWatchdog
from tests.support.appliance import stalls_in


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


def test_the_suites_summary_finds_what_the_watchdog_logs(caplog: pytest.LogCaptureFixture) -> None:
    """The run's summary of `evr serve` stalls (tests/support/appliance.py) reads the log
    line the watchdog writes: a change to one that the other missed would hide them."""
    caplog.set_level(logging.WARNING, logger="evr.watchdog")
    dog = LoopWatchdog(stall_s=0.3, tick_s=0.05)  # the real logger, not a callback

    async def stall() -> None:
        dog.start()
        beat = asyncio.create_task(dog.beat())
        await asyncio.sleep(0.1)
        block_the_loop_for(0.8)
        await asyncio.sleep(0.1)
        beat.cancel()
        dog.stop()

    asyncio.run(stall())
    printed = [
        f"2026-12-04 10:00:00,000 WARNING evr.watchdog [-] {r.getMessage()}\n"
        for r in caplog.records
    ]
    lines = [line + "\n" for text in printed for line in text.rstrip("\n").split("\n")]
    found = stalls_in(lines)
    assert len(found) == 1 and "block_the_loop_for" in found[0], found
