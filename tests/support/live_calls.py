"""A call through the live server's hub with real aiortc peers on both sides: the
caller's link made and agreed, both sockets open, both peers joined (the integration
tests that need media flowing through the hub, not a browser)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp

from appliance.models import Role
from appliance.services.audit import Actor
from appliance.services.calls import invites
from appliance.services.calls.invites import Consent
from appliance.services.identity import accounts
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.peers import Client
from tests.support.staff import PASSWORD, add_incident, add_user

DEVICE = "live-call-device"


@dataclass
class LiveCallClients:
    public_id: str
    caller_ws: aiohttp.ClientWebSocketResponse
    handler_ws: aiohttp.ClientWebSocketResponse
    peers: list[Client] = field(default_factory=list)


def invite(server: LiveServer, reference: str) -> tuple[str, str]:
    with server.db.session() as session:
        user = accounts.require(session, "pc1")
        incident = add_incident(session, user, reference)
        _, call, token = invites.create_invite(
            session, Actor("pc1"), incident, user, timedelta(hours=1)
        )
        invites.record_consent(
            session,
            call,
            Consent(video=True, recording=True, location=False),
            hashlib.sha256(DEVICE.encode()).hexdigest(),
            "",
        )
        return call.public_id, token


async def receive(ws: aiohttp.ClientWebSocketResponse, wanted: str) -> dict:
    """The next message of type ``wanted`` (others skipped), each within 20 s."""
    while True:
        message = await ws.receive(timeout=20)
        if message.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"socket closed waiting for {wanted!r}: {message}")
        data = json.loads(message.data)
        if data["type"] == wanted:
            return data


@asynccontextmanager
async def signed_in_officer(server: LiveServer, username: str = "pc1") -> AsyncIterator[FormClient]:
    """A handler account made on ``server`` and signed in: the officer's browser."""
    with server.db.session() as session:
        add_user(session, username, Role.HANDLER)
    client = FormClient(server.base_url)
    await client.sign_in(username, PASSWORD)
    try:
        yield client
    finally:
        await client.close()


async def join(ws: aiohttp.ClientWebSocketResponse, peer: Client) -> None:
    await receive(ws, "hello")
    await ws.send_json({"type": "join", "sdp": await peer.offer()})
    await peer.accept((await receive(ws, "answer"))["sdp"])


async def connect(
    server: LiveServer,
    phone: aiohttp.ClientSession,
    officer: FormClient,
    reference: str,
    caller: Client | None = None,
) -> LiveCallClients:
    public_id, token = invite(server, reference)
    wss = server.base_url.replace("https://", "wss://")
    caller_ws = await phone.ws_connect(f"{wss}/ws/v/{token}")
    handler_ws = await officer.session.ws_connect(f"{wss}/ws/calls/{public_id}")
    peers = [caller or Client("caller"), Client("handler")]
    live = LiveCallClients(public_id, caller_ws, handler_ws, peers)
    await join(caller_ws, live.peers[0])
    await join(handler_ws, live.peers[1])
    return live


async def hang_up(live: LiveCallClients) -> None:
    for ws in (live.caller_ws, live.handler_ws):
        await ws.close()
    for peer in live.peers:
        await peer.close()
