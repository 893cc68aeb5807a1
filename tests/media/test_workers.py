"""Rooms in media worker processes: spread, killed, replaced; the fallback still records."""

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from media import RoomClosedError, RoomConfig, RoomEvent, SdpError, UnknownLegError
from media.workers import RoomProxy, WorkerPool
from tests.support.peers import Client, connect, until
from tests.support.recordings import decode_file

CONFIG = RoomConfig(ice_servers=[], allow_loopback=True)


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    pool = WorkerPool(2)
    yield pool
    await pool.stop()


async def _call(
    pool: WorkerPool, name: str, events: list[RoomEvent], clients: list[Client]
) -> tuple[RoomProxy, Client, Client]:
    room = pool.room(name, CONFIG, on_event=events.append)
    caller, handler = Client("caller"), Client("handler", video=False)
    clients += [caller, handler]
    await connect(room, caller, "caller", "caller")
    await connect(room, handler, "handler", "handler")
    return room, caller, handler


async def test_calls_spread_over_workers_and_media_flows(
    pool: WorkerPool, clients: list[Client]
) -> None:
    events: list[RoomEvent] = []
    first, _, handler_1 = await _call(pool, "call-1", events, clients)
    second, _, handler_2 = await _call(pool, "call-2", events, clients)

    assert first.worker is not second.worker
    assert first.worker.pid != second.worker.pid != os.getpid()
    await until(lambda: handler_1.video_frames >= 10 and handler_2.video_frames >= 10)
    assert handler_1.video_size == handler_2.video_size == (640, 480)
    assert first.leg_ids == ["caller", "handler"]
    stats = await first.stats()
    assert stats["caller"].video_codec == "video/vp8" and stats["caller"].packets_received > 0
    assert {e.kind for e in events if e.room_id == "call-1"} >= {"connected", "first_video_frame"}
    # A third call goes to the less loaded worker once the first has ended.
    await first.close()
    third = pool.room("call-3", CONFIG)
    assert third.worker is first.worker
    await third.close()


async def test_errors_cross_the_pipe_as_the_same_exceptions(
    pool: WorkerPool, clients: list[Client]
) -> None:
    """Tried: a bad offer, an unknown leg, a second recording: the Room's own errors."""
    room = pool.room("errors", CONFIG)
    with pytest.raises(SdpError):
        await room.join("caller", "caller", "this is not an SDP")
    with pytest.raises(UnknownLegError):
        await room.leave("nobody")
    stranger = Client("x")
    clients.append(stranger)
    with pytest.raises(ValueError, match="role must be one of"):
        await room.join("x", "bystander", await stranger.offer())
    assert room.leg_ids == []
    await room.close()
    with pytest.raises(RoomClosedError):
        await room.join("caller", "caller", "v=0")


async def test_a_killed_worker_fails_only_its_calls_and_is_replaced(
    pool: WorkerPool, clients: list[Client], tmp_path: Path
) -> None:
    events: list[RoomEvent] = []
    doomed, _, _ = await _call(pool, "doomed", events, clients)
    survivor, _, survivor_handler = await _call(pool, "survivor", events, clients)
    assert doomed.worker is not survivor.worker
    recording = tmp_path / "doomed.webm"
    await doomed.start_recording(recording)
    await until(lambda: survivor_handler.video_frames >= 5)
    await until(lambda: recording.exists() and recording.stat().st_size > 20_000, what="written")
    old_pid = doomed.worker.pid
    assert old_pid is not None

    os.kill(old_pid, signal.SIGKILL)
    await until(lambda: any(e.room_id == "doomed" and e.kind == "failed" for e in events))
    failed = [e for e in events if e.kind == "failed" and e.leg_id is None]
    assert [e.room_id for e in failed] == ["doomed"]
    assert "stopped" in failed[0].detail["reason"]
    assert doomed.leg_ids == [] and not doomed.recording
    with pytest.raises(RoomClosedError):
        await doomed.stats()
    assert await doomed.close() is None

    seen = survivor_handler.video_frames
    await until(lambda: survivor_handler.video_frames >= seen + 15, what="survivor still flows")
    assert survivor.leg_ids == ["caller", "handler"]

    fresh, _, fresh_handler = await _call(pool, "fresh", events, clients)
    assert fresh.worker.pid not in (old_pid, survivor.worker.pid)
    assert pool.restarts == 1
    await until(lambda: fresh_handler.video_frames >= 10, what="the new worker relays")
    # The recording the dead worker was writing still plays up to about the kill.
    decoded = decode_file(str(recording))
    assert decoded.video_frames > 0 and decoded.audio_frames > 0


async def test_codec_mismatch_falls_back_to_transcoding_and_still_records(
    pool: WorkerPool, clients: list[Client], tmp_path: Path
) -> None:
    """A handler that takes only H264 gets the VP8 caller re-encoded; the file is VP8."""
    events: list[RoomEvent] = []
    room = pool.room("mismatch", CONFIG, on_event=events.append)
    caller = Client("caller")
    handler = Client("handler", video=False, video_codec="video/H264")
    clients += [caller, handler]
    await connect(room, caller, "caller", "caller")
    await connect(room, handler, "handler", "handler")
    await room.start_recording(tmp_path / "mismatch.webm")
    await until(lambda: handler.video_frames >= 15, timeout=20, what="H264 video at the handler")
    assert handler.video_size == (640, 480)
    stats = await room.stats()
    assert stats["caller"].video_codec == "video/vp8"
    assert stats["handler"].video_codec == "video/h264"
    await asyncio.sleep(1.0)
    info = await room.stop_recording()
    assert info.video_codec == "vp8" and info.path.endswith(".webm")
    decoded = decode_file(info.path)
    assert decoded.video_codecs == ["vp8"] and decoded.video_frames >= 10
    assert decoded.video_size == (640, 480)
    assert any(e.kind == "recording_stopped" for e in events)
