"""The signalling WebSockets over real HTTPS: who gets in, and what bad input does (nothing)."""

from __future__ import annotations

import base64
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from pydantic import SecretStr

from appliance.models import CallState, Invite, Role, utcnow
from appliance.services.calls import states
from tests.support.hostile import caller_http, consented_call, receive, ws_url
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_user

pytestmark = pytest.mark.sqlite_only(
    reason="the WebSocket protocol and real aiortc peers are under test, not the database"
)


async def _offer() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(AudioStreamTrack())
    pc.addTrack(VideoStreamTrack())
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with caller_http(live_server) as session:
        yield session


def _handler(server: LiveServer, username: str) -> None:
    with server.db.session() as session:
        add_user(session, username, Role.HANDLER)


async def test_bad_messages_get_an_error_and_break_nothing(
    live_server: LiveServer, http: aiohttp.ClientSession
) -> None:
    _handler(live_server, "pc1")
    first = consented_call(live_server, "pc1", "CAD/S/1")
    other = consented_call(live_server, "pc1", "CAD/S/2")
    async with http.ws_connect(ws_url(live_server, f"/ws/v/{other.token}")) as bystander:
        hello = await receive(bystander, "hello")
        assert hello["state"] == "invited" and hello["iceServers"] == []
        async with http.ws_connect(ws_url(live_server, f"/ws/v/{first.token}")) as ws:
            await receive(ws, "hello")
            tried = {
                "{not json": "bad_json",
                "[1, 2]": "bad_message",
                '{"type": "teleport"}': "unknown_type",
                '{"type": "join"}': "invalid",
                '{"type": "chat", "text": ""}': "invalid",
                '{"type": "location", "latitude": 91, "longitude": 0, "accuracy": 5}': "invalid",
                json.dumps({"type": "chat", "text": "x" * 70_000}): "too_large",
                '{"type": "join", "sdp": "this is not an SDP"}': "bad_sdp",
                json.dumps({"type": "join", "sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"}): "bad_sdp",
                '{"type": "restart", "sdp": "v=0"}': "not_allowed",
            }
            for raw, code in tried.items():
                await ws.send_str(raw)
                reply = await receive(ws, "error")
                assert reply["code"] == code, (raw[:40], reply)
            await ws.send_str('{"type": "ping"}')
            assert (await receive(ws, "pong"))["type"] == "pong"

            pc, sdp = await _offer()
            try:
                await ws.send_json({"type": "join", "sdp": sdp})
                answer = await receive(ws, "answer")
                assert answer["sdp"].startswith("v=0")
                assert (await receive(ws, "state"))["state"] == "waiting"
            finally:
                await pc.close()
        await bystander.send_str('{"type": "ping"}')
        assert (await receive(bystander, "pong"))["type"] == "pong"
    with live_server.db.session() as session:
        assert states.by_public_id(session, other.call.public_id).state == CallState.INVITED


async def test_who_may_open_a_socket(live_server: LiveServer, http: aiohttp.ClientSession) -> None:
    _handler(live_server, "pc1")
    _handler(live_server, "pc2")
    invited = consented_call(live_server, "pc1", "CAD/S/3")
    unconsented = consented_call(live_server, "pc1", "CAD/S/4", consent=False)

    async def refused(session: aiohttp.ClientSession, path: str) -> int:
        with pytest.raises(aiohttp.WSServerHandshakeError) as raised:
            async with session.ws_connect(ws_url(live_server, path)):
                pass
        return raised.value.status

    assert await refused(http, "/ws/v/not-a-token") == 403
    assert await refused(http, f"/ws/v/{unconsented.token}") == 403
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as stranger:
        # Another phone (no device cookie from the consent) is refused.
        assert await refused(stranger, f"/ws/v/{invited.token}") == 403
        # Signed out: no handler socket.
        assert await refused(stranger, f"/ws/calls/{invited.call.public_id}") == 401

    other = FormClient(live_server.base_url)
    try:
        await other.sign_in("pc2", PASSWORD)
        # A handler who does not own the incident cannot join its room.
        assert await refused(other.session, f"/ws/calls/{invited.call.public_id}") == 403
    finally:
        await other.close()
    owner = FormClient(live_server.base_url)
    try:
        await owner.sign_in("pc1", PASSWORD)
        async with owner.session.ws_connect(
            ws_url(live_server, f"/ws/calls/{invited.call.public_id}")
        ) as ws:
            assert (await receive(ws, "hello"))["role"] == "handler"
            # Nobody is waiting yet: admitting is refused, and says why.
            pc, sdp = await _offer()
            try:
                await ws.send_json({"type": "join", "sdp": sdp})
                reply = await receive(ws, "error")
                assert reply["code"] == "not_allowed" and "nobody to admit" in reply["message"]
            finally:
                await pc.close()
    finally:
        await owner.close()


async def test_cross_site_sockets_are_refused(
    live_server: LiveServer, http: aiohttp.ClientSession
) -> None:
    _handler(live_server, "pc1")
    invited = consented_call(live_server, "pc1", "CAD/S/5")
    with pytest.raises(aiohttp.WSServerHandshakeError) as raised:
        async with http.ws_connect(
            ws_url(live_server, f"/ws/v/{invited.token}"), origin="https://evil.example"
        ):
            pass
    assert raised.value.status == 403


async def test_an_expired_link_shows_a_plain_page_and_opens_no_socket(
    live_server: LiveServer, http: aiohttp.ClientSession
) -> None:
    _handler(live_server, "pc1")
    invited = consented_call(live_server, "pc1", "CAD/S/6")
    with live_server.db.session() as session:
        invite = session.get(Invite, invited.call.invite_id)
        invite.expires_at = utcnow() - timedelta(minutes=1)
        session.add(invite)
    async with http.get(f"{live_server.base_url}/v/{invited.token}") as response:
        body = await response.text()
        assert response.status == 410
        assert "This link has expired" in body and "caller.js" not in body
    with pytest.raises(aiohttp.WSServerHandshakeError) as raised:
        async with http.ws_connect(ws_url(live_server, f"/ws/v/{invited.token}")):
            pass
    assert raised.value.status == 403
    with live_server.db.session() as session:
        assert states.by_public_id(session, invited.call.public_id).state == CallState.EXPIRED


async def test_hello_carries_turn_credentials_minted_for_the_call(
    live_server: LiveServer, http: aiohttp.ClientSession
) -> None:
    """coturn's REST scheme: username '<expiry>:<user>', credential base64(HMAC-SHA1)."""
    live_server.settings.stun_urls = ["stun:127.0.0.1:3478"]
    live_server.settings.turn_urls = ["turn:127.0.0.1:3478?transport=udp"]
    live_server.settings.turn_secret = SecretStr("coturn-static-auth-secret")
    _handler(live_server, "pc1")
    invited = consented_call(live_server, "pc1", "CAD/S/7")
    async with http.ws_connect(ws_url(live_server, f"/ws/v/{invited.token}")) as ws:
        hello = await receive(ws, "hello")
    stun, turn = hello["iceServers"]
    assert stun == {"urls": ["stun:127.0.0.1:3478"]}
    assert turn["urls"] == ["turn:127.0.0.1:3478?transport=udp"]
    expiry, user = turn["username"].split(":", 1)
    assert user == f"call-{invited.call.public_id}"
    assert abs(int(expiry) - (time.time() + live_server.settings.turn_ttl_seconds)) < 60
    expected = hmac.new(b"coturn-static-auth-secret", turn["username"].encode(), "sha1").digest()
    assert turn["credential"] == base64.b64encode(expected).decode()


async def test_sound_only_passes_between_caller_and_officer(
    live_server: LiveServer, http: aiohttp.ClientSession
) -> None:
    """The caller switches video off; the officer's console hears it (by whom, pressed
    or automatic), a page opened afterwards starts with it in ``hello``, and the
    officer switching video back on reaches the caller. A malformed one is refused."""
    _handler(live_server, "pc1")
    call = consented_call(live_server, "pc1", "CAD/S/SO")
    officer = FormClient(live_server.base_url)
    try:
        await officer.sign_in("pc1", PASSWORD)
        console_url = ws_url(live_server, f"/ws/calls/{call.call.public_id}")
        async with (
            http.ws_connect(ws_url(live_server, f"/ws/v/{call.token}")) as caller,
            officer.session.ws_connect(console_url) as console,
        ):
            assert (await receive(caller, "hello"))["soundOnly"] is False
            await receive(console, "hello")
            await caller.send_json({"type": "sound_only", "on": "yes"})
            assert (await receive(caller, "error"))["code"] == "invalid"
            await caller.send_json({"type": "sound_only", "on": True, "automatic": True})
            told = await receive(console, "sound_only")
            assert told == {"type": "sound_only", "on": True, "automatic": True, "by": "caller"}
            # The officer's page reloaded (the new socket replaces the old one).
            async with officer.session.ws_connect(console_url) as reloaded:
                assert (await receive(reloaded, "hello"))["soundOnly"] is True
                await reloaded.send_json({"type": "sound_only", "on": False})
                told = await receive(caller, "sound_only")
            assert told == {"type": "sound_only", "on": False, "automatic": False, "by": "handler"}
    finally:
        await officer.close()


async def test_messages_first_is_the_officers_to_switch_and_reaches_the_caller(
    live_server: LiveServer, http: aiohttp.ClientSession
) -> None:
    """The officer makes messages the call's main way to talk: the caller's page is told,
    a page opened afterwards starts with it in ``hello``; the caller asking for it is
    refused (``not_allowed``), as is a malformed one, and nothing changes."""
    _handler(live_server, "pc1")
    call = consented_call(live_server, "pc1", "CAD/S/TF")
    officer = FormClient(live_server.base_url)
    try:
        await officer.sign_in("pc1", PASSWORD)
        console_url = ws_url(live_server, f"/ws/calls/{call.call.public_id}")
        async with (
            http.ws_connect(ws_url(live_server, f"/ws/v/{call.token}")) as caller,
            officer.session.ws_connect(console_url) as console,
        ):
            assert (await receive(caller, "hello"))["textFirst"] is False
            await receive(console, "hello")
            await caller.send_json({"type": "text_first", "on": True})
            assert (await receive(caller, "error"))["code"] == "not_allowed"
            await console.send_json({"type": "text_first", "on": "yes"})
            assert (await receive(console, "error"))["code"] == "invalid"
            await console.send_json({"type": "text_first", "on": True})
            assert await receive(caller, "text_first") == {"type": "text_first", "on": True}
            async with officer.session.ws_connect(console_url) as reloaded:
                assert (await receive(reloaded, "hello"))["textFirst"] is True
                await reloaded.send_json({"type": "text_first", "on": False})
                assert await receive(caller, "text_first") == {"type": "text_first", "on": False}
    finally:
        await officer.close()
