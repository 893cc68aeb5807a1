"""Fire-and-forget tasks that are still referenced until they finish."""

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)

_running: set["asyncio.Task[Any]"] = set()


def spawn(coro: Coroutine[Any, Any, Any]) -> "asyncio.Task[Any]":
    """Run ``coro`` in the background; keep it alive and log its failure."""
    task = asyncio.ensure_future(coro)
    _running.add(task)
    task.add_done_callback(_done)
    return task


def _done(task: "asyncio.Task[Any]") -> None:
    _running.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("background task failed", exc_info=task.exception())
