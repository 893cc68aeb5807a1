"""Sound only by itself on a weak line (appliance/live/weak_line.py), through the hub with
real aiortc peers: half of the caller's UDP dropped on its way in (nftables in the suite's
network namespace), then the line made good again."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from appliance.config import Settings
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.live_calls import connect, hang_up, receive
from tests.support.outage import UdpLoss, box_ports

pytestmark = pytest.mark.sqlite_only(
    reason="the box's judgement of a line from real peers' packets, not the database"
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"media_allow_loopback": True})


async def test_a_caller_line_losing_half_its_packets_goes_sound_only_and_back(
    live_server: LiveServer, live_phone: aiohttp.ClientSession, live_officer: FormClient
) -> None:
    """Half the caller's packets lost for three 2 s periods: both pages are told the box
    switched the call to sound only for the line. The loss stops: after five clean
    periods both are told video is back. Nobody pressed anything."""
    call = await connect(live_server, live_phone, live_officer, "CAD/WL/1")
    caller = call.peers[0]
    loss = UdpLoss(box_ports(caller.pc.localDescription.sdp), 50)
    try:
        loss.start()
        # Three 2 s periods of loss are enough, but a period in which the box itself was
        # late (its sampler, or a media worker's stats) counts for nothing, and a CI box
        # with two other workers has such periods: a CI run once took over 30 s here.
        for ws in (call.handler_ws, call.caller_ws):
            async with asyncio.timeout(60):  # stats arrive every 2 s meanwhile
                told = await receive(ws, "sound_only")
            assert told == {"type": "sound_only", "on": True, "automatic": True, "by": "box"}
        loss.stop()
        for ws in (call.handler_ws, call.caller_ws):
            async with asyncio.timeout(60):
                told = await receive(ws, "sound_only")
            assert told == {"type": "sound_only", "on": False, "automatic": True, "by": "box"}
    finally:
        loss.stop()
        await hang_up(call)
