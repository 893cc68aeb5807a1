"""A caller whose phone sends less than sound and picture, through the hub with real
aiortc peers: a microphone refused (the caller shows the scene and types), or camera and
microphone both refused (the caller watches, listens and types). The call goes ahead, the
officer's page is told what the caller sends, and the caller still sees and hears the
officer."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from appliance.config import Settings
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.live_calls import connect, hang_up, receive
from tests.support.peers import Client, until

pytestmark = pytest.mark.sqlite_only(reason="what the peers send, not the database")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"media_allow_loopback": True})


async def _caller_sends(ws: aiohttp.ClientWebSocketResponse) -> list[str] | None:
    """What the next `state` that names it says the caller sends."""
    async with asyncio.timeout(20):
        while True:
            state = await receive(ws, "state")
            if state["callerSends"] is not None:
                return state["callerSends"]


@pytest.mark.parametrize(
    ("camera", "sends"), [(True, ["video"]), (False, [])], ids=["no microphone", "neither"]
)
async def test_a_caller_without_a_microphone_is_on_the_call(
    live_server: LiveServer,
    live_phone: aiohttp.ClientSession,
    live_officer: FormClient,
    camera: bool,
    sends: list[str],
) -> None:
    caller = Client("caller", audio=False, video=camera)
    call = await connect(live_server, live_phone, live_officer, "CAD/MIC/1", caller=caller)
    handler = call.peers[1]
    try:
        assert await _caller_sends(call.handler_ws) == sends
        await until(lambda: caller.audio_frames >= 25, timeout=20, what="the officer heard")
        await until(lambda: caller.video_frames >= 5, timeout=20, what="the officer seen")
        if camera:
            await until(lambda: handler.video_frames >= 5, timeout=20, what="the scene shown")
        assert handler.audio_frames == 0, "the caller sent no sound"
        await call.caller_ws.send_json({"type": "chat", "text": "I cannot talk"})
        chat = await receive(call.handler_ws, "chat")
        assert chat["text"] == "I cannot talk"
    finally:
        await hang_up(call)


async def test_a_caller_with_both_sends_both(
    live_server: LiveServer, live_phone: aiohttp.ClientSession, live_officer: FormClient
) -> None:
    """The ordinary caller, for contrast: the console is told audio and video."""
    call = await connect(live_server, live_phone, live_officer, "CAD/MIC/2")
    try:
        assert await _caller_sends(call.handler_ws) == ["audio", "video"]
    finally:
        await hang_up(call)
