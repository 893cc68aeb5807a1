"""A live call's staff socket is re-authorised on every message and on a short timer
(item 11): it closes with code 4003 and says why once the session ends (sign-out, the
account disabled) or the right goes (the incident re-assigned)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
import pytest

from appliance.live.participants import NO_LONGER_ALLOWED
from appliance.models import Incident, Role
from appliance.services.audit import Actor
from appliance.services.calls import invites, life, states
from appliance.services.calls.invites import Consent
from appliance.services.identity import accounts
from appliance.services.intake import queue
from appliance.web import keys
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_incident, add_user

pytestmark = pytest.mark.sqlite_only(
    reason="the hub's sockets are under test; the services it asks run on both engines"
)


@dataclass
class Console:
    client: FormClient
    public_id: str
    incident_id: int


@pytest.fixture
async def console(live_server: LiveServer) -> AsyncIterator[Console]:
    """A signed-in handler on a connected call (no media needed here)."""
    with live_server.db.session() as session:
        user = add_user(session, "pc4", Role.HANDLER)
        add_user(session, "pc5", Role.HANDLER)
        incident = add_incident(session, user, "CAD/RA/1")
        _, call, _ = invites.create_invite(
            session, Actor("pc4"), incident, user, timedelta(hours=1)
        )
        invites.record_consent(session, call, Consent(True, False, False), "d" * 64, "t")
        states.caller_waiting(session, call, "t")
        life.admit(session, live_server.settings, call, user, "t")
        public_id, incident_id = call.public_id, incident.id or 0
    client = FormClient(live_server.base_url)
    await client.sign_in("pc4", PASSWORD)
    await client.get(f"/calls/{public_id}")
    try:
        yield Console(client, public_id, incident_id)
    finally:
        await client.close()


def _wss(server: LiveServer, public_id: str) -> str:
    return server.base_url.replace("https://", "wss://") + f"/ws/calls/{public_id}"


async def _closed(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    message = await ws.receive(timeout=10)
    while message.type == aiohttp.WSMsgType.TEXT:
        message = await ws.receive(timeout=10)
    return message


async def _pong(ws: aiohttp.ClientWebSocketResponse) -> bool:
    """The legitimate path: a ping is answered while the right holds."""
    await ws.send_json({"type": "ping"})
    while True:
        message = await ws.receive(timeout=10)
        if message.type != aiohttp.WSMsgType.TEXT:
            return False
        if json.loads(message.data).get("type") == "pong":
            return True


async def test_signing_out_closes_the_open_socket(
    live_server: LiveServer, console: Console
) -> None:
    """Tried: the handler signs out in another tab while the console's socket stays open
    and silent; the timer closes it."""
    live_server.app[keys.HUB].recheck_seconds = 0.2
    async with console.client.session.ws_connect(_wss(live_server, console.public_id)) as ws:
        assert await _pong(ws)
        await console.client.get("/")
        response, _ = await console.client.post("/logout")
        assert response.status == 303
        closed = await _closed(ws)
    assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == NO_LONGER_ALLOWED
    assert closed.extra == "signed out"


async def test_a_disabled_account_loses_the_call_at_its_next_message(
    live_server: LiveServer, console: Console
) -> None:
    """Tried: the account is disabled, then its open socket sends chat; the message is
    refused by closing the socket (the timer is set too long to be what closed it)."""
    live_server.app[keys.HUB].recheck_seconds = 3600
    async with console.client.session.ws_connect(_wss(live_server, console.public_id)) as ws:
        assert await _pong(ws)
        with live_server.db.session() as session:
            accounts.set_disabled(session, Actor("adm"), "pc4", True)
        await ws.send_json({"type": "chat", "text": "still here?"})
        closed = await _closed(ws)
    assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == NO_LONGER_ALLOWED
    assert closed.extra == "account disabled"
    with live_server.db.session() as session:
        call = states.by_public_id(session, console.public_id)
        assert call is not None and states.chat_of(session, call) == []


async def test_a_reassigned_incident_closes_the_old_handlers_socket(
    live_server: LiveServer, console: Console
) -> None:
    """Tried: a supervisor gives the incident to another handler while the first one's
    console socket is open and silent."""
    live_server.app[keys.HUB].recheck_seconds = 0.2
    async with console.client.session.ws_connect(_wss(live_server, console.public_id)) as ws:
        assert await _pong(ws)
        with live_server.db.session() as session:
            incident = session.get(Incident, console.incident_id)
            other = accounts.require(session, "pc5")
            queue.assign(session, live_server.settings, Actor("sup"), incident, other)
        closed = await _closed(ws)
    assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == NO_LONGER_ALLOWED
    assert "re-assigned" in closed.extra
