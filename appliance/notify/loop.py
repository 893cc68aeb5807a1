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
        self._stopping = False

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
            self._stopping = False
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.create_task(self._forever(), name=self.name)

    async def stop(self) -> None:
        """Cancel the task and wait for it. It also stops at its next tick by itself:
        Python 3.11's ``asyncio.wait_for`` could swallow a cancel that came as the wait
        ended, and a teardown in CI waited on such a task until the test timed out."""
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._loop = None

    async def _forever(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                while await self.run_once() == self.batch and not self._stopping:
                    pass
            except Exception:
                log.exception("%s failed; trying again at the next tick", self.name)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await self._wake.wait()

    async def run_once(self) -> int:
        """Work through one batch of what is due; how many items were tried."""
        raise NotImplementedError
