"""A supervisor on a live call: observe it (receive only, nothing moves), take it over.

Real aiortc peers for the caller, the handler and the supervisor through the in-process
server (media in the web process, loopback ICE): what each side receives is counted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp
import pytest
from sqlmodel import select

from appliance.config import Settings
from appliance.models import AuditEvent, Call, Role
from appliance.services.audit import Actor
from appliance.services.calls import invites, states
from appliance.services.calls.invites import Consent
from appliance.services.identity import accounts
from tests.support.hostile import caller_http, receive, ws_url
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.peers import Client, until
from tests.support.staff import PASSWORD, add_incident, add_user


async def _closed_with(ws: aiohttp.ClientWebSocketResponse) -> int:
    """The close code of a socket the box is closing (messages before it skipped)."""
    message = await ws.receive(timeout=10)
    while message.type == aiohttp.WSMsgType.TEXT:
        message = await ws.receive(timeout=10)
    assert message.type == aiohttp.WSMsgType.CLOSE, message
    return int(message.data)


pytestmark = pytest.mark.sqlite_only(
    reason="the signalling sockets and real aiortc peers are under test, not the database"
)

DEVICE = "supervision-test-phone"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.media_workers = 0
    settings.media_allow_loopback = True
    return settings


@dataclass
class Scene:
    server: LiveServer
    public_id: str
    phone: aiohttp.ClientSession
    officer: FormClient
    sergeant: FormClient
    caller_ws: aiohttp.ClientWebSocketResponse
    handler_ws: aiohttp.ClientWebSocketResponse
    caller: Client
    handler: Client
    peers: list[Client] = field(default_factory=list)
    sockets: list[aiohttp.ClientWebSocketResponse] = field(default_factory=list)

    async def socket(self, client: FormClient) -> aiohttp.ClientWebSocketResponse:
        ws = await client.session.ws_connect(ws_url(self.server, f"/ws/calls/{self.public_id}"))
        self.sockets.append(ws)
        return ws

    def audit(self) -> list[AuditEvent]:
        with self.server.db.session() as session:
            query = select(AuditEvent).where(AuditEvent.object_id == self.public_id)
            return list(session.exec(query).all())

    def call(self) -> Call:
        with self.server.db.session() as session:
            call = states.by_public_id(session, self.public_id)
            assert call is not None
            return call


async def _join(ws: aiohttp.ClientWebSocketResponse, peer: Client) -> dict:
    hello = await receive(ws, "hello")
    await ws.send_json({"type": "join", "sdp": await peer.offer()})
    await peer.accept((await receive(ws, "answer"))["sdp"])
    return hello


def _observer() -> Client:
    """A supervisor's receive-only peer, as the console makes it: the caller's audio and
    video, then the officer's."""
    peer = Client("supervisor", video=False, audio=False)
    peer.pc.addTransceiver("audio", direction="recvonly")
    peer.pc.addTransceiver("video", direction="recvonly")
    return peer


@pytest.fixture
async def scene(live_server: LiveServer) -> AsyncIterator[Scene]:
    """A connected call with media both ways, and a signed-in supervisor."""
    with live_server.db.session() as session:
        officer = add_user(session, "pc1", Role.HANDLER)
        add_user(session, "sgt1", Role.SUPERVISOR)
        add_user(session, "pc2", Role.HANDLER)
        add_user(session, "pc3", Role.HANDLER)
        incident = add_incident(session, officer, "CAD/SUP/1")
        _, call, token = invites.create_invite(
            session, Actor("pc1"), incident, officer, timedelta(hours=1)
        )
        invites.record_consent(
            session,
            call,
            Consent(True, False, False),
            hashlib.sha256(DEVICE.encode()).hexdigest(),
            "",
        )
        public_id = call.public_id
    clients = [FormClient(live_server.base_url), FormClient(live_server.base_url)]
    await clients[0].sign_in("pc1", PASSWORD)
    await clients[1].sign_in("sgt1", PASSWORD)
    for client in clients:  # the signed-in session's CSRF token, from a page
        await client.get("/calls")
    async with caller_http(live_server, DEVICE) as phone:
        caller_ws = await phone.ws_connect(ws_url(live_server, f"/ws/v/{token}"))
        handler_ws = await clients[0].session.ws_connect(
            ws_url(live_server, f"/ws/calls/{public_id}")
        )
        caller, handler = Client("caller"), Client("handler")
        scene = Scene(
            live_server, public_id, phone, clients[0], clients[1],
            caller_ws, handler_ws, caller, handler, [caller, handler], [caller_ws, handler_ws],
        )  # fmt: skip
        try:
            await _join(caller_ws, caller)
            await _join(handler_ws, handler)
            await until(lambda: handler.video_frames > 5 and caller.video_frames > 5, 20, "media")
            yield scene
        finally:
            for ws in scene.sockets:
                await ws.close()
            for peer in scene.peers:
                await peer.close()
            for client in clients:
                await client.close()


async def test_an_observer_sees_both_sides_and_the_handler_keeps_the_call(scene: Scene) -> None:
    """The supervisor's socket becomes an observer's (not the handler's): its receive-only
    leg gets the caller's and the officer's video, the handler's socket stays open and
    its frames keep coming, the handler and (by default) the caller are told who is
    watching, the call does not move, and the observation is audited."""
    observer_ws = await scene.socket(scene.sergeant)
    observer = _observer()
    scene.peers.append(observer)
    hello = await _join(observer_ws, observer)
    assert hello["role"] == "observer" and hello["state"] == "connected"

    seen = await receive(scene.handler_ws, "presence")
    assert seen["role"] == "observer" and seen["present"] is True and seen["name"]
    told = await receive(scene.caller_ws, "state")
    while not told["observers"]:  # the states from before the observer came are queued
        told = await receive(scene.caller_ws, "state")
    assert [o["leg"] for o in told["observers"]] == [seen["leg"]]

    before = scene.handler.video_frames
    await until(
        lambda: observer.frames_by_mid.get("1", 0) > 10 and observer.frames_by_mid.get("3", 0) > 10,
        20,
        "the caller's video (mid 1) and the officer's (mid 3) at the observer",
    )
    await until(lambda: scene.handler.video_frames > before + 10, 10, "the handler's frames")
    assert not scene.handler_ws.closed and not scene.caller_ws.closed

    # An observer watches: it does not chat, and its offer must only receive.
    await observer_ws.send_json({"type": "chat", "text": "hello"})
    assert (await receive(observer_ws, "error"))["code"] == "not_allowed"
    sending = Client("sending")
    scene.peers.append(sending)
    await observer_ws.send_json({"type": "join", "sdp": await sending.offer()})
    assert "only receives" in (await receive(observer_ws, "error"))["message"]

    call = scene.call()
    assert call.state == "connected"
    with scene.server.db.session() as session:
        assert call.handler_id == accounts.require(session, "pc1").id
    observed = [e for e in scene.audit() if e.action == "call.observed"]
    assert len(observed) == 1 and observed[0].actor == "sgt1"
    assert observed[0].detail["handler"] == "pc1"

    await observer_ws.close()
    await receive(scene.handler_ws, "presence")
    await until(lambda: any(e.action == "call.observe_ended" for e in scene.audit()), 5, "audit")
    assert not scene.handler_ws.closed


async def test_a_take_over_needs_a_reason_tells_the_handler_and_keeps_the_caller(
    scene: Scene,
) -> None:
    """Take over without a reason is refused; with one, the handler's console is told who
    and why and closed with 4004, the caller's socket and media stay, and the
    supervisor's next console is the handler's: the caller receives the officer's video
    again. The officer who lost the call cannot open it as its handler again."""
    url = f"/calls/{scene.public_id}/take-over"
    response, body = await scene.sergeant.post(url, {"reason": "  "})
    assert response.status == 409 and "say why" in json.loads(body)["error"]
    response, body = await scene.officer.post(url, {"reason": "mine"})
    assert response.status == 403  # a handler cannot take a call

    response, body = await scene.sergeant.post(url, {"reason": "caller at risk, escalating"})
    assert response.status == 200, body
    taken = await receive(scene.handler_ws, "taken_over")
    assert taken["reason"] == "caller at risk, escalating" and taken["by"]
    assert await _closed_with(scene.handler_ws) == 4004
    assert (await receive(scene.caller_ws, "officer_changing"))["officer"] == taken["by"]

    supervisor_ws = await scene.socket(scene.sergeant)
    supervisor = Client("supervisor")
    scene.peers.append(supervisor)
    assert (await _join(supervisor_ws, supervisor))["role"] == "handler"
    before = scene.caller.video_frames
    await until(lambda: scene.caller.video_frames > before + 10, 20, "the supervisor's video")
    assert not scene.caller_ws.closed and scene.call().state == "connected"

    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await scene.socket(scene.officer)
    assert refused.value.status == 409
    taken_over = [e for e in scene.audit() if e.action == "call.taken_over"]
    assert len(taken_over) == 1 and taken_over[0].actor == "sgt1"
    assert taken_over[0].detail == {
        "from": "pc1",
        "reason": "caller at risk, escalating",
    }


async def test_a_call_handed_to_a_colleague_is_theirs_once_they_take_it(scene: Scene) -> None:
    """The officer offers the call to pc2 with a note and stays on it; pc3 cannot take a
    call handed to pc2; pc2 sees it with the note and takes it: the officer's console is
    told and closed with 4005, the caller hears another officer is joining and then
    receives pc2's video, on the same connection throughout."""
    url = f"/calls/{scene.public_id}/handover"
    response, body = await scene.officer.post(url, {"to": "pc2", "note": ""})
    assert response.status == 409 and "note" in json.loads(body)["error"]
    response, body = await scene.officer.post(url, {"to": "pc2", "note": "end of my shift"})
    assert response.status == 200, body
    assert not scene.handler_ws.closed  # the officer keeps the call until it is taken

    colleague, bystander = FormClient(scene.server.base_url), FormClient(scene.server.base_url)
    try:
        await colleague.sign_in("pc2", PASSWORD)
        await bystander.sign_in("pc3", PASSWORD)
        _, page = await bystander.get("/calls/waiting.json")
        assert json.loads(page)["handovers"] == []
        _, page = await colleague.get("/calls/waiting.json")
        [offered] = json.loads(page)["handovers"]
        assert offered["note"] == "end of my shift" and offered["toYou"] is True
        await bystander.get("/calls")
        response, _ = await bystander.post(offered["accept"], {})
        assert response.status == 409

        await colleague.get("/calls")
        response, _ = await colleague.post(offered["accept"], {})
        assert (
            response.status == 303 and response.headers["Location"] == f"/calls/{scene.public_id}"
        )
        told = await receive(scene.handler_ws, "handed_over")
        assert told["note"] == "end of my shift"
        assert await _closed_with(scene.handler_ws) == 4005
        assert (await receive(scene.caller_ws, "officer_changing"))["officer"] == told["to"]
        before = scene.caller.video_frames

        ws = await scene.socket(colleague)
        peer = Client("pc2")
        scene.peers.append(peer)
        assert (await _join(ws, peer))["role"] == "handler"
        await until(lambda: scene.caller.video_frames > before + 10, 20, "pc2's video")
        assert not scene.caller_ws.closed and scene.call().state == "connected"
    finally:
        await colleague.close()
        await bystander.close()
    actions = [e.action for e in scene.audit()]
    assert actions.count("call.handover_offered") == 1 and actions.count("call.handed_over") == 1
    handler_id = scene.call().handler_id
    with scene.server.db.session() as session:
        assert handler_id == accounts.require(session, "pc2").id


async def test_an_observer_is_not_shown_to_the_caller_when_the_force_says_so(
    live_server: LiveServer,
) -> None:
    """With ``observers_shown_to_caller`` off, the caller's socket hears nothing of a
    supervisor who starts and stops observing (no presence, no observers in the state,
    not in ``present``), while the handler's does. No media is needed for this."""
    live_server.settings.observers_shown_to_caller = False
    with live_server.db.session() as session:
        officer = add_user(session, "pc1", Role.HANDLER)
        add_user(session, "sgt1", Role.SUPERVISOR)
        incident = add_incident(session, officer, "CAD/SUP/2")
        _, call, token = invites.create_invite(
            session, Actor("pc1"), incident, officer, timedelta(hours=1)
        )
        device = hashlib.sha256(DEVICE.encode()).hexdigest()
        invites.record_consent(session, call, Consent(True, False, False), device, "")
        states.caller_waiting(session, call, "t")
        public_id = call.public_id
    officer_client, sergeant = FormClient(live_server.base_url), FormClient(live_server.base_url)
    await officer_client.sign_in("pc1", PASSWORD)
    await sergeant.sign_in("sgt1", PASSWORD)
    path = f"/ws/calls/{public_id}"
    try:
        async with (
            caller_http(live_server, DEVICE) as phone,
            phone.ws_connect(ws_url(live_server, f"/ws/v/{token}")) as caller_ws,
            officer_client.session.ws_connect(ws_url(live_server, path)) as handler_ws,
        ):
            await receive(caller_ws, "hello")
            assert (await receive(handler_ws, "hello"))["role"] == "handler"
            async with sergeant.session.ws_connect(ws_url(live_server, path)) as observer_ws:
                hello = await receive(observer_ws, "hello")
                assert hello["role"] == "observer"
                seen = await receive(handler_ws, "state")
                while not seen["observers"]:
                    seen = await receive(handler_ws, "state")
            await receive(handler_ws, "presence")  # the observer left
            await caller_ws.send_json({"type": "ping"})
            heard = []
            while (message := json.loads((await caller_ws.receive(timeout=10)).data))[
                "type"
            ] != "pong":
                heard.append(message)
    finally:
        await officer_client.close()
        await sergeant.close()
    assert [m for m in heard if m["type"] == "presence" and m["role"] == "observer"] == []
    for state in (m for m in heard if m["type"] == "state"):
        assert state["observers"] == [] and state["present"] == ["caller", "handler"]
