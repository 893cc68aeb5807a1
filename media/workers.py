"""Media worker processes and the rooms that live in them, seen from the appliance.

One Python process uses one core. The appliance keeps signalling, pages and the
database; each call's media runs in one of N worker processes (:mod:`media.worker_process`).
A :class:`RoomProxy` has the same async methods, properties and events as
:class:`media.Room`, so the appliance cannot tell them apart; the offer and answer
SDP cross a socketpair, the media goes straight to the worker's own UDP sockets.

A worker that dies (a crash, the OOM killer, SIGKILL) is replaced; each of its rooms
reports one room-wide ``failed`` event (``detail.reason``) and refuses further calls,
so the appliance fails those calls; rooms in other workers carry on.
"""

import asyncio
import contextlib
import inspect
import itertools
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from media import ipc
from media.background import spawn
from media.config import RoomConfig
from media.errors import MediaError, RoomClosedError
from media.events import RoomEvent
from media.recorder import RecordingInfo
from media.stats import LegStats

logger = logging.getLogger(__name__)

DEFAULT_FACTORY = "media.room:Room"
WORKER_START_TIMEOUT_S = 30.0
_ROOT = str(Path(__file__).resolve().parents[1])


class WorkerDiedError(MediaError, RuntimeError):
    """The media worker holding this room stopped; the room's media is gone."""


class Worker:
    """One worker process as the appliance sees it: its pipe, requests and rooms."""

    def __init__(self, index: int, factory: str, on_exit: Callable[["Worker"], None]) -> None:
        self.index = index
        self.factory = factory
        self.rooms: dict[str, RoomProxy] = {}
        self.pid: int | None = None
        self.alive = True
        self._on_exit = on_exit
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._writer: asyncio.StreamWriter | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._ready: asyncio.Task[None] = asyncio.ensure_future(self._start())

    @property
    def load(self) -> int:
        return len(self.rooms)

    async def ready(self) -> None:
        await asyncio.shield(self._ready)

    async def _start(self) -> None:
        parent, child = socket.socketpair()
        try:
            path = os.pathsep.join(filter(None, [_ROOT, os.environ.get("PYTHONPATH")]))
            env = {**os.environ, "PYTHONPATH": path}
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "media.worker_process",
                str(child.fileno()),
                self.factory,
                pass_fds=(child.fileno(),),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
            )
        finally:
            child.close()
        reader, self._writer = await asyncio.open_unix_connection(sock=parent)
        try:
            async with asyncio.timeout(WORKER_START_TIMEOUT_S):
                hello = await ipc.read(reader)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError) as exc:
            self._writer.close()
            self._died()
            raise WorkerDiedError(f"media worker {self.index} did not start: {exc!r}") from exc
        self.pid = hello[1]
        logger.info("media worker %d started (pid %d)", self.index, self.pid)
        spawn(self._read_loop(reader))

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                message = await ipc.read(reader)
                if message[0] == "reply":
                    _, request_id, ok, value, state = message
                    future = self._pending.pop(request_id, None)
                    if future is not None and not future.done():
                        future.set_result((ok, value, state))
                elif message[0] == "event":
                    _, event, state = message
                    room = self.rooms.get(event.room_id)
                    if room is not None:
                        room._deliver(event, state)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if self._writer is not None:
                self._writer.close()
            if self._process is not None:
                code = await self._process.wait()
                if self.alive:
                    logger.error(
                        "media worker %d (pid %s) exited with %s", self.index, self.pid, code
                    )
            self._died()

    def _died(self) -> None:
        if not self.alive:
            return
        self.alive = False
        for future in self._pending.values():
            if not future.done():
                future.set_exception(WorkerDiedError(f"media worker {self.index} stopped"))
        self._pending.clear()
        rooms, self.rooms = list(self.rooms.values()), {}
        for room in rooms:
            room._worker_died(f"media worker {self.index} stopped")
        self._on_exit(self)

    async def request(
        self, room_id: str, method: str, args: tuple[object, ...], kw: dict[str, object]
    ) -> Any:
        await self.ready()
        if not self.alive or self._writer is None:
            raise WorkerDiedError(f"media worker {self.index} stopped")
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self._writer.write(ipc.pack(("call", request_id, room_id, method, args, kw)))
        ok, value, state = await future
        room = self.rooms.get(room_id)
        if room is not None:
            room._update(state)
        if not ok:
            raise value
        return value

    async def stop(self) -> None:
        """Close the pipe (the worker closes its rooms and exits); kill it if it lingers."""
        self.alive = False
        with contextlib.suppress(Exception):
            await self._ready
        if self._writer is not None:
            self._writer.close()
        if self._process is not None and self._process.returncode is None:
            try:
                async with asyncio.timeout(10):
                    await self._process.wait()
            except TimeoutError:
                self._process.kill()
                await self._process.wait()

    def kill(self) -> None:
        """SIGKILL the process (tests and benches)."""
        if self._process is not None and self._process.returncode is None:
            self._process.kill()


class WorkerPool:
    """N media worker processes; each new room goes to the one with fewest rooms.

    Workers start on first use (a box that takes no call, and most tests, pay
    nothing); a worker that dies is replaced at once. ``factory`` names the room class
    the workers build (``"module:Name"``, the same constructor as :class:`media.Room`);
    benches use it to run another pipeline through the same appliance.
    """

    def __init__(
        self,
        size: int,
        factory: str = DEFAULT_FACTORY,
        on_restart: Callable[[], Any] | None = None,
    ) -> None:
        """``on_restart`` is told each time a dead worker is replaced (for a metric)."""
        if size < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.size = size
        self.factory = factory
        self.on_restart = on_restart
        self._slots: list[Worker | None] = [None] * size
        self._stopping = False
        self.restarts = 0

    @property
    def workers(self) -> list[Worker]:
        return [w for w in self._slots if w is not None]

    def _pick(self) -> Worker:
        if self._stopping:
            raise RoomClosedError("the media workers are stopping")
        loads = [(w.load if w is not None and w.alive else 0, i) for i, w in enumerate(self._slots)]
        _, index = min(loads)
        worker = self._slots[index]
        if worker is None or not worker.alive:
            worker = self._slots[index] = Worker(index, self.factory, self._exited)
        return worker

    def _exited(self, worker: Worker) -> None:
        if self._stopping or self._slots[worker.index] is not worker:
            return
        self.restarts += 1
        self._slots[worker.index] = Worker(worker.index, self.factory, self._exited)
        if self.on_restart is not None:
            self.on_restart()

    def room(
        self,
        room_id: str,
        config: RoomConfig | None = None,
        on_event: Callable[[RoomEvent], Any] | None = None,
    ) -> "RoomProxy":
        """A room in the least-loaded worker (made there at its first call)."""
        worker = self._pick()
        proxy = RoomProxy(room_id, config or RoomConfig(), on_event, worker)
        worker.rooms[room_id] = proxy
        return proxy

    async def stop(self) -> None:
        self._stopping = True
        await asyncio.gather(*(w.stop() for w in self.workers))


class RoomProxy:
    """A :class:`media.Room` in a worker process; same methods, properties and events."""

    def __init__(
        self,
        room_id: str,
        config: RoomConfig,
        on_event: Callable[[RoomEvent], Any] | None,
        worker: Worker,
    ) -> None:
        self.room_id = room_id
        self.config = config
        self.worker = worker
        self._on_event = on_event
        self._legs: list[str] = []
        self._recording = False
        self._opened: asyncio.Task[Any] | None = None
        self._dead: str | None = None
        self._closed = False

    @property
    def leg_ids(self) -> list[str]:
        return list(self._legs)

    @property
    def recording(self) -> bool:
        return self._recording

    async def join(self, leg_id: str, role: str, offer_sdp: str) -> str:
        answer: str = await self._call("join", leg_id, role, offer_sdp)
        return answer

    async def renegotiate(self, leg_id: str, offer_sdp: str) -> str:
        answer: str = await self._call("renegotiate", leg_id, offer_sdp)
        return answer

    async def leave(self, leg_id: str) -> None:
        await self._call("leave", leg_id)

    async def start_recording(self, *args: Any, **kwargs: Any) -> None:
        """Forwarded as given: the worker's room decides what the arguments mean."""
        await self._call("start_recording", *args, **kwargs)

    async def stop_recording(self) -> RecordingInfo:
        info: RecordingInfo = await self._call("stop_recording")
        return info

    async def snapshot(self, leg_id: str) -> bytes:
        jpeg: bytes = await self._call("snapshot", leg_id)
        return jpeg

    async def stats(self) -> dict[str, LegStats]:
        stats: dict[str, LegStats] = await self._call("stats")
        return stats

    async def close(self) -> RecordingInfo | None:
        if self._closed or self._dead is not None:
            self._closed = True
            self.worker.rooms.pop(self.room_id, None)
            return None
        self._closed = True
        try:
            if self._opened is None:
                return None
            info: RecordingInfo | None = await self._request("close")
            return info
        finally:
            if self.worker.rooms.get(self.room_id) is self:
                del self.worker.rooms[self.room_id]

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """The answer was pickled by the worker's room: the methods above name its type."""
        if self._dead is not None:
            raise RoomClosedError(f"room {self.room_id!r}: {self._dead}")
        if self._closed:
            raise RoomClosedError(f"room {self.room_id!r} is closed")
        if self._opened is None:
            self._opened = asyncio.ensure_future(self._request("open", self.config))
        await asyncio.shield(self._opened)
        return await self._request(method, *args, **kwargs)

    async def _request(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return await self.worker.request(self.room_id, method, args, kwargs)

    def _update(self, state: tuple[list[str], bool] | None) -> None:
        if state is not None:
            self._legs, self._recording = list(state[0]), state[1]
        else:
            self._legs, self._recording = [], False

    def _deliver(self, event: RoomEvent, state: tuple[list[str], bool] | None) -> None:
        self._update(state)
        self._emit(event)

    def _worker_died(self, reason: str) -> None:
        self._dead = reason
        self._legs, self._recording = [], False
        self._emit(RoomEvent(self.room_id, None, "failed", {"reason": reason}))

    def _emit(self, event: RoomEvent) -> None:
        if self._on_event is None:
            return
        try:
            result = self._on_event(event)
        except Exception:
            logger.exception("room %s: on_event failed for %s", self.room_id, event.kind)
            return
        if inspect.isawaitable(result):
            spawn(_await(result))


async def _await(result: Any) -> None:
    await result
