"""Notice when the event loop stops turning, and say where it stood.

One process serves every page and every call's signalling: anything that blocks its
event loop (a write waiting on SQLite's lock, a hash, an image decoded in place) stalls
every caller and handler at once, and from outside it looks like a box that hangs. A
task on the loop beats every quarter second; a thread watches the beat. When the beat is
late by more than the threshold, the thread logs the loop thread's stack once for that
stall (the line that blocks is in it) and counts it, so an operator or a failed test
sees the culprit instead of a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable

from appliance import metrics

log = logging.getLogger("evr.watchdog")

TICK_S = 0.25
STALL_S = 1.0


class LoopWatchdog:
    """The beat (on the loop) and the watcher (a daemon thread)."""

    def __init__(
        self,
        stall_s: float = STALL_S,
        tick_s: float = TICK_S,
        on_stall: Callable[[float, str], None] | None = None,
    ) -> None:
        self.stall_s = stall_s
        self.tick_s = tick_s
        self.on_stall = on_stall or _log_stall
        self._beat_at = time.monotonic()
        self._loop_thread = threading.get_ident()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    async def beat(self) -> None:
        """Runs on the loop for as long as the app does; also measures its own lag."""
        self._loop_thread = threading.get_ident()
        while True:
            self._beat_at = before = time.monotonic()
            await asyncio.sleep(self.tick_s)
            metrics.EVENT_LOOP_LAG.observe(max(0.0, time.monotonic() - before - self.tick_s))

    def start(self) -> None:
        self._beat_at = time.monotonic()
        self._watcher = threading.Thread(target=self._watch, name="loop-watchdog", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=2)

    def _watch(self) -> None:
        reported_beat: float | None = None
        while not self._stop.wait(self.tick_s):
            beat_at = self._beat_at
            late = time.monotonic() - beat_at
            if late < self.stall_s or beat_at == reported_beat:
                continue
            reported_beat = beat_at  # once per stall, however long it lasts
            metrics.EVENT_LOOP_STALLS.inc()
            frame = sys._current_frames().get(self._loop_thread)
            stack = "".join(traceback.format_stack(frame)) if frame is not None else ""
            self.on_stall(late, stack)


def _log_stall(late: float, stack: str) -> None:
    log.warning(
        "the event loop has not turned for %.1f s; it is at:\n%s",
        late,
        stack,
        extra={"stalled_s": round(late, 1)},
    )


async def watching(app: object) -> AsyncIterator[None]:
    """An aiohttp cleanup context: the watchdog lives as long as the app."""
    dog = LoopWatchdog()
    dog.start()
    task = asyncio.get_running_loop().create_task(dog.beat())
    try:
        yield
    finally:
        task.cancel()  # it holds nothing: the loop finishes it in its next turn
        dog.stop()
