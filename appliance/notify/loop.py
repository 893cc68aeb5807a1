"""A background task that works through what is due: every few seconds, or at once when
poked (from any thread). The SMS dispatcher and the CAD sender are both one of these.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger("evr.notify")


class PollingTask:
    name = "polling-task"

    def __init__(self, interval_s: float, batch: int) -> None:
        self.interval_s = interval_s
        self.batch = batch
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def poke(self) -> None:
        """Work now instead of at the next tick. Safe from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def start(self) -> None:
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.create_task(self._forever(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._loop = None

    async def _forever(self) -> None:
        while True:
            self._wake.clear()
            try:
                while await self.run_once() == self.batch:
                    pass
            except Exception:
                log.exception("%s failed; trying again at the next tick", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)

    async def run_once(self) -> int:
        """Work through one batch of what is due; how many items were tried."""
        raise NotImplementedError
