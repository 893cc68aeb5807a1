"""The SMS dispatcher's and the CAD sender's loop stops when told, even when a cancel
is lost on the way (Python 3.11's ``asyncio.wait_for`` could swallow one that came as its
wait ended; a CI teardown then waited on the sender until the test timed out)."""

from __future__ import annotations

import asyncio

from appliance.notify.loop import PollingTask


class SwallowsOneCancel(PollingTask):
    """Works for a long time, and loses the first cancel that reaches it."""

    def __init__(self) -> None:
        super().__init__(interval_s=60, batch=10)
        self.working = asyncio.Event()
        self.cancels_lost = 0

    async def run_once(self) -> int:
        self.working.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            if self.cancels_lost:
                raise
            self.cancels_lost += 1
        return 0


async def test_stop_returns_at_once_though_the_cancel_was_swallowed() -> None:
    task = SwallowsOneCancel()
    await task.start()
    await task.working.wait()
    stopping = asyncio.create_task(task.stop())
    # The next tick is 60 s away: only the stop flag can end the loop sooner.
    done, _ = await asyncio.wait({stopping}, timeout=5)
    assert stopping in done, "stop() still waiting on the loop after 5 s"
    assert task.cancels_lost == 1


async def test_a_stopped_task_starts_again() -> None:
    task = SwallowsOneCancel()
    await task.start()
    await task.working.wait()
    await task.stop()
    task.working.clear()
    await task.start()
    async with asyncio.timeout(5):
        await task.working.wait()
    await task.stop()
