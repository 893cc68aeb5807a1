"""Calls through the hub with media in worker processes: spread, and a worker killed."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import signal
from pathlib import Path

import aiohttp
import av
import pytest
from prometheus_client import REGISTRY

from appliance.config import Settings
from appliance.live.hub import CallHub
from appliance.models import CallState
from appliance.services.calls import states
from appliance.services.evidence import master_key, sealing
from appliance.services.identity import accounts
from appliance.web import keys
from media.workers import RoomProxy
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.live_calls import (
    LiveCallClients,
    connect,
    hang_up,
    receive,
)
from tests.support.peers import Client, until

pytestmark = pytest.mark.sqlite_only(
    reason="media worker processes and real aiortc peers are under test, not the database"
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.media_workers = 2
    settings.media_allow_loopback = True
    return settings


def _room(server: LiveServer, public_id: str) -> RoomProxy:
    assert server.app is not None
    hub: CallHub = server.app[keys.HUB]
    room = hub.calls[public_id].room
    assert isinstance(room, RoomProxy)
    return room


def _state(server: LiveServer, public_id: str) -> str:
    with server.db.session() as session:
        call = states.by_public_id(session, public_id)
        assert call is not None
        return call.state


async def test_calls_spread_over_workers_and_a_killed_worker_fails_only_its_call(
    live_server: LiveServer, live_phone: aiohttp.ClientSession, live_officer: FormClient
) -> None:
    first = await connect(live_server, live_phone, live_officer, "CAD/W/1")
    second = await connect(live_server, live_phone, live_officer, "CAD/W/2")
    made: list[LiveCallClients] = [first, second]
    try:
        room_1, room_2 = _room(live_server, first.public_id), _room(live_server, second.public_id)
        assert room_1.worker is not room_2.worker, "two calls, two workers"
        assert _state(live_server, first.public_id) == CallState.CONNECTED
        assert room_1.leg_ids == ["caller", "handler"]
        await asyncio.sleep(1.5)  # the recording has started and written something
        assert room_1.recording
        pid = room_1.worker.pid
        assert pid is not None and pid != os.getpid()

        restarts = REGISTRY.get_sample_value("evr_media_worker_restarts_total") or 0.0
        os.kill(pid, signal.SIGKILL)
        ended = await receive(first.handler_ws, "ended")
        assert (ended["state"], ended["reason"]) == ("failed", "media_failed")
        assert (await receive(first.caller_ws, "ended"))["state"] == "failed"
        assert _state(live_server, first.public_id) == CallState.FAILED
        with live_server.db.session() as session:
            call = states.by_public_id(session, first.public_id)
            recordings = states.recordings_of(session, call)
            assert [r.status for r in recordings] == ["partial"]
            assert recordings[0].size_bytes and recordings[0].sha256

        assert REGISTRY.get_sample_value("evr_media_worker_restarts_total") == restarts + 1
        assert _state(live_server, second.public_id) == CallState.CONNECTED
        assert room_2.leg_ids == ["caller", "handler"]
        assert (await room_2.stats())["caller"].state in ("new", "connecting", "connected")

        third = await connect(live_server, live_phone, live_officer, "CAD/W/3")
        made.append(third)
        room_3 = _room(live_server, third.public_id)
        assert room_3.worker.pid not in (pid, room_2.worker.pid)
        assert _state(live_server, third.public_id) == CallState.CONNECTED
    finally:
        for live in made:
            await hang_up(live)


async def test_an_h264_caller_is_relayed_snapshotted_and_kept_as_matroska_when_its_worker_dies(
    live_server: LiveServer, live_phone: aiohttp.ClientSession, live_officer: FormClient
) -> None:
    """Tried: a caller that offers only H.264 (as Safari on an older iPhone does) through
    the hub and a worker process; the officer's peer decodes its video, a snapshot is a
    real picture; the records name the ``.mkv`` the recorder made (WebM cannot hold
    H.264) while the call goes on; then the worker is killed mid-recording. The partial
    recording is that file, sealed, and PyAV reads it back as Matroska with an H.264
    track that decodes."""
    live = await connect(
        live_server,
        live_phone,
        live_officer,
        "CAD/W/H264",
        Client("caller", video_codec="video/H264"),
    )
    try:
        handler = live.peers[1]
        room = _room(live_server, live.public_id)
        await until(lambda: handler.video_frames >= 10, timeout=20, what="H.264 at the officer")
        stats = await room.stats()
        assert stats["caller"].video_codec == stats["handler"].video_codec == "video/h264"
        assert handler.video_size == (640, 480)

        assert live_server.app is not None
        hub: CallHub = live_server.app[keys.HUB]
        with live_server.db.session() as session:
            user = accounts.require(session, "pc1")
        snapshot = await hub.snapshot(live.public_id, user, "")
        async with live_officer.session.get(
            f"{live_server.base_url}/calls/{live.public_id}/snapshots/{snapshot.id}"
        ) as response:
            assert response.status == 200
            jpeg = await response.read()
        with av.open(io.BytesIO(jpeg), format="image2pipe") as still:
            picture = next(still.decode(video=0))
        assert (picture.width, picture.height) == (snapshot.width, snapshot.height) == (640, 480)

        await asyncio.sleep(1.5)  # a cluster or two of H.264 sealed
        with live_server.db.session() as session:
            call = states.by_public_id(session, live.public_id)
            [recording] = states.recordings_of(session, call)
            keyring = master_key.open_keyring(live_server.settings, session)
            file = sealing.file_at(session, keyring, recording.path)
            # While the call goes on, the records already name the file the recorder made.
            assert recording.status == "recording" and recording.path.endswith(".mkv")
            assert file is not None and file.path.endswith(".mkv")
        assert room.recording and room.worker.pid is not None
        os.kill(room.worker.pid, signal.SIGKILL)
        ended = await receive(live.handler_ws, "ended")
        assert (ended["state"], ended["reason"]) == ("failed", "media_failed")
        with live_server.db.session() as session:
            call = states.by_public_id(session, live.public_id)
            [recording] = states.recordings_of(session, call)
            assert recording.status == "partial"
            assert recording.path.endswith(".mkv") and recording.duration_s
            keyring = master_key.open_keyring(live_server.settings, session)
            file = sealing.file_at(session, keyring, recording.path)
            assert file is not None and file.status == "incomplete"
            assert file.path.endswith(".mkv") and file.sha256 == recording.sha256
            plain = sealing.open_bytes(keyring, file)
        assert not Path(recording.path).with_suffix(".webm").exists()
        assert hashlib.sha256(plain).hexdigest() == recording.sha256
        with av.open(io.BytesIO(plain)) as container:
            assert "matroska" in container.format.name
            assert [s.codec_context.name for s in container.streams.video] == ["h264"]
            decoded = sum(1 for _ in container.decode(video=0))
        assert decoded >= 15, decoded
    finally:
        await hang_up(live)


async def test_a_call_both_sides_left_ends_as_abandoned_and_one_side_keeps_it(
    live_server: LiveServer, live_phone: aiohttp.ClientSession, live_officer: FormClient
) -> None:
    """Tried: both pages close without ending the call; then only the caller's closes."""
    live_server.settings.call_abandoned_seconds = 1.0
    left = await connect(live_server, live_phone, live_officer, "CAD/W/A1")
    kept = await connect(live_server, live_phone, live_officer, "CAD/W/A2")
    try:
        assert _state(live_server, left.public_id) == CallState.CONNECTED
        await left.caller_ws.close()
        await left.handler_ws.close()
        await kept.caller_ws.close()
        deadline = asyncio.get_running_loop().time() + 15
        while _state(live_server, left.public_id) != CallState.ENDED:
            assert asyncio.get_running_loop().time() < deadline, "the abandoned call stayed up"
            await asyncio.sleep(0.2)

        def sealed() -> bool:  # the call ends first, its recording is sealed after
            with live_server.db.session() as session:
                call = states.by_public_id(session, left.public_id)
                assert call is not None
                return states.recordings_of(session, call)[0].status != "recording"

        await until(sealed, 15, "the abandoned call's recording to be sealed")
        with live_server.db.session() as session:
            call = states.by_public_id(session, left.public_id)
            assert call is not None and call.end_reason == "abandoned"
            [recording] = states.recordings_of(session, call)
            assert recording.status == "complete"  # closed and hashed, not cut short
        await asyncio.sleep(3)  # two more sampler periods: the handler is still there
        assert _state(live_server, kept.public_id) == CallState.CONNECTED
    finally:
        await hang_up(left)
        await hang_up(kept)
