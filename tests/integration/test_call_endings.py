"""However a call ends, the force's CAD hears ``call.ended`` exactly once.

Each path runs through the real route (a socket's End, the console's End, a revoke,
the quick exit's beacon, "caller not safe", both sides gone, a killed media worker,
the appliance stopping, a crash recovered at start-up), with real aiortc peers and a
CAD receiver that checks signatures and the schema. After the first end, every other
way to end the call is tried again: none of them may send a second event.

The engine is not what these test, so they run on SQLite only.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlmodel import select

from appliance.config import Settings
from appliance.models import CadDelivery, CallState, DeliveryState, Role
from appliance.services.audit import Actor
from appliance.services.calls import invites, states
from appliance.services.calls.invites import Consent
from appliance.services.identity import accounts
from appliance.web import keys
from media.workers import RoomProxy
from tests.support.cad_receiver import CadReceiver, running_receiver, settings_for
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.peers import Client
from tests.support.staff import PASSWORD, add_incident, add_user

DEVICE = "endings-test-device"


pytestmark = pytest.mark.sqlite_only(
    reason="the endings are decided in the services, not by the engine; real aiortc peers"
)


@pytest.fixture
async def cad_receiver() -> AsyncIterator[CadReceiver]:
    async with running_receiver() as receiver:
        yield receiver


@pytest.fixture
def settings(tmp_path: Path, database_url: str, cad_receiver: CadReceiver) -> Settings:
    return settings_for(
        tmp_path, database_url, cad_receiver, media_workers=1, media_allow_loopback=True
    )


@dataclass
class Scene:
    server: LiveServer
    officer: FormClient
    phone: FormClient
    cad: CadReceiver
    incident_id: int = 0
    public_id: str = ""
    token: str = ""
    sockets: list[aiohttp.ClientWebSocketResponse] = field(default_factory=list)
    peers: list[Client] = field(default_factory=list)

    @property
    def wss(self) -> str:
        return self.server.base_url.replace("https://", "wss://")

    def state(self) -> str:
        with self.server.db.session() as session:
            return states.get(session, self.public_id).state


@pytest.fixture
async def scene(live_server: LiveServer, cad_receiver: CadReceiver) -> AsyncIterator[Scene]:
    with live_server.db.session() as session:
        add_user(session, "pc1", Role.HANDLER, Role.RVR_OFFICER)  # one scene is RVR work
    officer = FormClient(live_server.base_url)
    await officer.sign_in("pc1", PASSWORD)
    await officer.get("/incidents")  # the session's CSRF token
    phone = FormClient(live_server.base_url)
    phone.set_cookie(keys.CALLER_DEVICE_COOKIE, DEVICE)
    made = Scene(live_server, officer, phone, cad_receiver)
    try:
        yield made
    finally:
        for ws in made.sockets:
            await ws.close()
        for peer in made.peers:
            await peer.close()
        await phone.close()
        await officer.close()


def _invite(scene: Scene, category: str = "Theft") -> None:
    with scene.server.db.session() as session:
        user = accounts.require(session, "pc1")
        incident = add_incident(session, user, "CAD/END/1", category=category)
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
        scene.incident_id, scene.public_id, scene.token = incident.id or 0, call.public_id, token


async def _receive(ws: aiohttp.ClientWebSocketResponse, wanted: str) -> dict[str, Any]:
    while True:
        message = await ws.receive(timeout=20)
        if message.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"socket closed waiting for {wanted!r}: {message}")
        data = json.loads(message.data)
        if data["type"] == wanted:
            return data


async def _join(scene: Scene, ws: aiohttp.ClientWebSocketResponse, role: str) -> None:
    peer = Client(role)
    scene.peers.append(peer)
    await _receive(ws, "hello")
    await ws.send_json({"type": "join", "sdp": await peer.offer()})
    await peer.accept((await _receive(ws, "answer"))["sdp"])


async def _caller_waiting(scene: Scene) -> aiohttp.ClientWebSocketResponse:
    ws = await scene.phone.session.ws_connect(f"{scene.wss}/ws/v/{scene.token}")
    scene.sockets.append(ws)
    await _join(scene, ws, "caller")
    return ws


async def _connected(
    scene: Scene, category: str = "Theft"
) -> tuple[aiohttp.ClientWebSocketResponse, aiohttp.ClientWebSocketResponse]:
    _invite(scene, category)
    caller_ws = await _caller_waiting(scene)
    handler_ws = await scene.officer.session.ws_connect(f"{scene.wss}/ws/calls/{scene.public_id}")
    scene.sockets.append(handler_ws)
    await _join(scene, handler_ws, "handler")
    assert scene.state() == CallState.CONNECTED
    return caller_ws, handler_ws


async def _settled(scene: Scene) -> None:
    """Every queued CAD event has been answered by the receiver."""
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        with scene.server.db.session() as session:
            pending = session.exec(
                select(CadDelivery).where(CadDelivery.state == DeliveryState.PENDING.value)
            ).all()
        if not pending:
            return
        assert asyncio.get_running_loop().time() < deadline, "CAD events still pending"
        await asyncio.sleep(0.05)


def _ended_events(scene: Scene) -> list[dict[str, Any]]:
    assert scene.cad.violations == []
    return [
        event["data"]["call"]
        for event in scene.cad.events.values()
        if event["event"] == "call.ended" and event["data"]["call"]["id"] == scene.public_id
    ]


async def _until_final(scene: Scene) -> None:
    deadline = asyncio.get_running_loop().time() + 20
    while CallState(scene.state()) not in (
        CallState.ENDED,
        CallState.CANCELLED,
        CallState.FAILED,
    ):
        assert asyncio.get_running_loop().time() < deadline, f"the call stayed {scene.state()}"
        await asyncio.sleep(0.1)


async def _end_every_other_way(scene: Scene) -> None:
    """A second End on the console, a revoke, the quick exit, not safe: all too late."""
    for path in (
        f"/calls/{scene.public_id}/end",
        f"/calls/{scene.public_id}/revoke",
        f"/incidents/{scene.incident_id}/rvr/not-safe",
    ):
        response, _ = await scene.officer.post(path, {})
        assert response.status < 500, path
    await _quick_exit(scene)


async def _quick_exit(scene: Scene) -> None:
    """The beacon as quick-exit.js sends it, with the page's anonymous CSRF token."""
    await scene.phone.get("/login")  # any page sets the anonymous CSRF cookie
    csrf = scene.phone.cookie(keys.CSRF_COOKIE)
    assert csrf
    response, _ = await scene.phone.post(
        f"/v/{scene.token}/exit", {keys.CSRF_FIELD: csrf}, csrf=False
    )
    assert response.status == 204


async def _by_handler_socket(scene: Scene) -> None:
    _, handler_ws = await _connected(scene)
    await handler_ws.send_json({"type": "end"})
    assert (await _receive(handler_ws, "ended"))["reason"] == "handler_ended"


async def _by_caller_socket(scene: Scene) -> None:
    """The caller's own End holds the call's end while they may rejoin (nothing queued for
    the CAD); the officer's End on the console shuts the window and sends it."""
    caller_ws, _ = await _connected(scene)
    await caller_ws.send_json({"type": "end"})
    assert (await _receive(caller_ws, "ended"))["reason"] == "caller_ended"
    with scene.server.db.session() as session:
        assert (
            session.exec(select(CadDelivery).where(CadDelivery.event == "call.ended")).all() == []
        )
    response, _ = await scene.officer.post(f"/calls/{scene.public_id}/end", {})
    assert response.status == 303


async def _by_console(scene: Scene) -> None:
    caller_ws, _ = await _connected(scene)
    response, _ = await scene.officer.post(f"/calls/{scene.public_id}/end", {})
    assert response.status in (200, 303)
    assert (await _receive(caller_ws, "ended"))["state"] == "ended"


async def _by_revoke(scene: Scene) -> None:
    _invite(scene)
    caller_ws = await _caller_waiting(scene)
    response, _ = await scene.officer.post(f"/calls/{scene.public_id}/revoke", {})
    assert response.status in (200, 303)
    assert (await _receive(caller_ws, "ended"))["state"] == "cancelled"


async def _by_quick_exit(scene: Scene) -> None:
    caller_ws, _ = await _connected(scene)
    await _quick_exit(scene)
    assert (await _receive(caller_ws, "ended"))["reason"] == "quick_exit"


async def _by_not_safe(scene: Scene) -> None:
    _, handler_ws = await _connected(scene, category="Domestic abuse")
    response, _ = await scene.officer.post(f"/incidents/{scene.incident_id}/rvr/not-safe", {})
    assert response.status in (200, 303)
    assert (await _receive(handler_ws, "ended"))["reason"] == "caller_not_safe"


async def _by_abandoning(scene: Scene) -> None:
    scene.server.settings.call_abandoned_seconds = 0.5
    caller_ws, handler_ws = await _connected(scene)
    await caller_ws.close()
    await handler_ws.close()


async def _by_media_failing(scene: Scene) -> None:
    _, handler_ws = await _connected(scene)
    assert scene.server.app is not None
    room = scene.server.app[keys.HUB].calls[scene.public_id].room
    assert isinstance(room, RoomProxy) and room.worker.pid is not None
    os.kill(room.worker.pid, signal.SIGKILL)
    assert (await _receive(handler_ws, "ended"))["reason"] == "media_failed"


async def _by_stopping(scene: Scene) -> None:
    await _connected(scene)
    assert scene.server.app is not None
    await scene.server.app[keys.HUB].close_all()


PATHS: dict[str, tuple[Callable[[Scene], Awaitable[None]], str, str]] = {
    "handler ends on the socket": (_by_handler_socket, "ended", "handler_ended"),
    "caller ends on the socket": (_by_caller_socket, "ended", "caller_ended"),
    "handler ends on the console": (_by_console, "ended", "handler_ended"),
    "invite revoked while the caller waits": (_by_revoke, "cancelled", "revoked"),
    "caller's quick exit": (_by_quick_exit, "ended", "quick_exit"),
    "caller not safe": (_by_not_safe, "ended", "caller_not_safe"),
    "both sides gone": (_by_abandoning, "ended", "abandoned"),
    "media worker killed": (_by_media_failing, "failed", "media_failed"),
    "appliance stopping": (_by_stopping, "ended", "appliance_stopped"),
}


@pytest.mark.parametrize("path", list(PATHS))
async def test_the_cad_hears_call_ended_exactly_once(scene: Scene, path: str) -> None:
    end_it, state, reason = PATHS[path]
    await end_it(scene)
    await _until_final(scene)
    await _settled(scene)
    assert _ended_events(scene) == [{"id": scene.public_id, "state": state, "reason": reason}]

    await _end_every_other_way(scene)
    await _settled(scene)
    assert _ended_events(scene) == [{"id": scene.public_id, "state": state, "reason": reason}]
    assert scene.state() == state


async def test_a_crash_recovered_at_start_up_tells_the_cad_once(
    settings: Settings, cad_receiver: CadReceiver
) -> None:
    """Tried: a connected call is left in the database as a killed process leaves it,
    then the appliance starts twice."""
    from appliance.server import prepare
    from appliance.web.app import create_app

    prepared = await asyncio.to_thread(prepare, settings)
    with prepared.db.session() as session:
        user = add_user(session, "pc1", Role.HANDLER)
        incident = add_incident(session, user, "CAD/END/CRASH")
        _, call, _ = invites.create_invite(
            session, Actor("pc1"), incident, user, timedelta(hours=1)
        )
        states.move(session, call, CallState.WAITING, Actor("caller"))
        states.move(session, call, CallState.CONNECTED, Actor("pc1"))
        public_id = call.public_id
    prepared.db.dispose()

    for _ in range(2):
        prepared = await asyncio.to_thread(prepare, settings)
        app = create_app(settings, prepared.db, prepared.keyring)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()  # runs on_startup: the CAD sender starts
        try:
            deadline = asyncio.get_running_loop().time() + 15
            while True:
                with prepared.db.session() as session:
                    rows = session.exec(select(CadDelivery)).all()
                    if rows and all(r.state != DeliveryState.PENDING.value for r in rows):
                        break
                assert asyncio.get_running_loop().time() < deadline, "nothing reached the CAD"
                await asyncio.sleep(0.05)
        finally:
            await runner.cleanup()
            prepared.db.dispose()

    assert cad_receiver.violations == []
    ended = [e["data"]["call"] for e in cad_receiver.events.values() if e["event"] == "call.ended"]
    assert ended == [{"id": public_id, "state": "failed", "reason": "appliance_restarted"}]
