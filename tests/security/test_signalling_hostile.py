"""Hostile signalling (issue 16, items 6 and 23): deep JSON, over-limit messages, bad
session descriptions and unsafe ICE candidates get the documented refusal, leave no
media room behind, and the socket (or the box) still serves."""

from __future__ import annotations

import json
import re

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from appliance.live import protocol
from appliance.web import keys
from media import sdp
from media.errors import SdpError
from tests.support.hostile import caller_http, consented_call, receive, ws_url
from tests.support.live import LiveServer

pytestmark = pytest.mark.sqlite_only(
    reason="the WebSocket protocol and the media plane are under test, not the database"
)


async def _offer() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(AudioStreamTrack())
    pc.addTrack(VideoStreamTrack())
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


def _garbled_fingerprint(offer: str) -> str:
    return re.sub(r"a=fingerprint:sha-256 \S+", "a=fingerprint:sha-256 ZZ:not:a:digest", offer)


async def test_deep_json_and_bad_offers_get_errors_and_leave_no_room(
    live_server: LiveServer,
) -> None:
    """A join nested 5,000 levels deep gets `bad_json` (it was a 500 and a dropped
    socket); an offer with a garbage DTLS fingerprint gets `bad_sdp`, as does garbage;
    no media room is made for any of them, and the socket still answers."""
    invited = consented_call(live_server, "pc1", "CAD/SH/1")
    hub = live_server.app[keys.HUB]
    pc, offer = await _offer()
    try:
        async with (
            caller_http(live_server) as http,
            http.ws_connect(ws_url(live_server, f"/ws/v/{invited.token}")) as ws,
        ):
            await receive(ws, "hello")
            await ws.send_str('{"type": "join", "sdp": ' + "[" * 5000 + "]" * 5000 + "}")
            assert (await receive(ws, "error"))["code"] == "bad_json"
            for bad in (_garbled_fingerprint(offer), "v=0\r\nnonsense\r\n"):
                await ws.send_json({"type": "join", "sdp": bad})
                assert (await receive(ws, "error"))["code"] == "bad_sdp"
                assert hub.calls[invited.call.public_id].room is None
            await ws.send_json({"type": "ping"})
            await receive(ws, "pong")
    finally:
        await pc.close()


async def test_a_message_too_large_to_read_gets_too_large_before_the_close(
    live_server: LiveServer,
) -> None:
    """Over 64 KiB: `too_large` and the socket stays. Over 1 MiB (the WebSocket layer's
    own limit): `too_large` first, then close 1009, and a new socket is served."""
    invited = consented_call(live_server, "pc1", "CAD/SH/2")
    async with caller_http(live_server) as http:
        async with http.ws_connect(ws_url(live_server, f"/ws/v/{invited.token}")) as ws:
            await receive(ws, "hello")
            await ws.send_str(json.dumps({"type": "chat", "text": "x" * 100_000}))
            assert (await receive(ws, "error"))["code"] == "too_large"
            await ws.send_str(json.dumps({"type": "chat", "text": "x" * (2 * 1024 * 1024)}))
            assert (await receive(ws, "error"))["code"] == "too_large"
            closing = await ws.receive(timeout=10)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            # The box closes with 1009; a client still writing its 2 MiB may see the
            # connection drop (1006) before it reads the close frame.
            assert ws.close_code in (1009, 1006)
        async with http.ws_connect(ws_url(live_server, f"/ws/v/{invited.token}")) as again:
            await receive(again, "hello")


def test_unsafe_ice_candidates_are_dropped_from_an_offer() -> None:
    """Link-local (the cloud metadata service among them), multicast, unspecified, the
    box's own addresses and loopback (unless allowed) never get connectivity checks."""
    lines = {
        "169.254.169.254": False,
        "fe80::1": False,
        "224.0.0.251": False,
        "0.0.0.0": False,  # noqa: S104 (an address in an offer, not a bind)
        "10.9.8.7": False,  # the box's own (given below)
        "127.0.0.1": False,
        "192.168.1.20": True,
        "81.2.69.160": True,
        "abcd1234-ffff.local": True,
    }
    offer = "v=0\r\n" + "".join(
        f"a=candidate:1 1 udp 2130706431 {address} 5000 typ host\r\n" for address in lines
    )
    kept = sdp.without_unsafe_candidates(offer, allow_loopback=False, own=frozenset({"10.9.8.7"}))
    assert [a for a in lines if f" {a} " in kept] == [a for a, ok in lines.items() if ok]
    looped = sdp.without_unsafe_candidates(offer, allow_loopback=True, own=frozenset({"10.9.8.7"}))
    assert " 127.0.0.1 " in looped and " 10.9.8.7 " in looped
    assert " 169.254.169.254 " not in looped and " 224.0.0.251 " not in looped


async def test_a_garbage_fingerprint_is_refused_by_the_parser() -> None:
    pc, offer = await _offer()
    await pc.close()
    sdp.parse_offer(offer)
    for value in ("ZZ:not:a:digest", "AB:" * 31 + "AB:CD", "AB"):
        with pytest.raises(SdpError, match="fingerprint"):
            sdp.parse_offer(re.sub(r"(a=fingerprint:sha-256 )\S+", r"\g<1>" + value, offer))
    with pytest.raises(SdpError, match="unknown algorithm"):
        sdp.parse_offer(offer.replace("a=fingerprint:sha-256", "a=fingerprint:md5"))
    assert protocol.MAX_FRAME_BYTES > protocol.MAX_MESSAGE_BYTES
