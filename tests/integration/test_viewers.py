"""The live view for responders: view-only links to one live call.

Real aiortc peers for the caller, the handler and each viewer through the in-process
server (media in the web process, loopback ICE): what each viewer receives is counted.
The viewer's peer is what the viewer's page makes: one recvonly audio and one recvonly
video transceiver, filled with the caller alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp
import pytest
from sqlmodel import select

from appliance import metrics
from appliance.config import Settings
from appliance.models import AuditEvent, Recording, Role, ViewerLink
from appliance.services.audit import Actor
from appliance.services.calls import invites, states
from appliance.services.calls.invites import Consent
from appliance.web import keys
from tests.support.hostile import caller_http, receive, ws_url
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.peers import Client, until
from tests.support.staff import PASSWORD, add_incident, add_user, connected_call

pytestmark = pytest.mark.sqlite_only(
    reason="the viewers' sockets and real aiortc peers are under test, not the database"
)

DEVICE = "viewer-test-phone"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.media_workers = 0
    settings.media_allow_loopback = True
    return settings


@dataclass
class Scene:
    server: LiveServer
    public_id: str
    officer: FormClient
    caller_ws: aiohttp.ClientWebSocketResponse
    handler_ws: aiohttp.ClientWebSocketResponse
    peers: list[Client] = field(default_factory=list)
    clients: list[FormClient] = field(default_factory=list)
    sockets: list[aiohttp.ClientWebSocketResponse] = field(default_factory=list)

    async def make_link(self, name: str = "PC 123 Khan, attending") -> dict:
        response, body = await self.officer.post(f"/calls/{self.public_id}/viewers", {"name": name})
        assert response.status == 200, body
        return json.loads(body)

    async def device(self, link: dict) -> FormClient:
        """A force phone that opened the link and pressed Watch (the link binds to it)."""
        phone = FormClient(self.server.base_url)
        self.clients.append(phone)
        response, page = await phone.get(_path(link))
        assert response.status == 200 and "Watch" in page
        response, _ = await phone.post(_path(link), {})
        assert response.status == 303
        return phone

    async def socket(self, phone: FormClient, path: str) -> aiohttp.ClientWebSocketResponse:
        ws = await phone.session.ws_connect(ws_url(self.server, "/ws" + path))
        self.sockets.append(ws)
        return ws

    async def watch(self, link: dict) -> tuple[aiohttp.ClientWebSocketResponse, Client]:
        """A viewer's page on its own phone: bound, joined with a receive-only offer."""
        ws = await self.socket(await self.device(link), _path(link))
        peer = Client("viewer", video=False, audio=False)
        self.peers.append(peer)
        hello = await receive(ws, "hello")
        assert hello["role"] == "viewer" and hello["state"] == "connected"
        await ws.send_json({"type": "join", "sdp": await peer.offer()})
        await peer.accept((await receive(ws, "answer"))["sdp"])
        return ws, peer

    def audit(self, prefix: str = "viewer.") -> list[AuditEvent]:
        with self.server.db.session() as session:
            query = select(AuditEvent).where(AuditEvent.object_id == self.public_id)
            return [e for e in session.exec(query).all() if e.action.startswith(prefix)]


def _path(link: dict) -> str:
    return "/w/" + link["link"].rsplit("/w/", 1)[1]


async def _next(ws: aiohttp.ClientWebSocketResponse) -> dict:
    message = await ws.receive(timeout=10)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    return json.loads(message.data)


async def _closed_with(ws: aiohttp.ClientWebSocketResponse) -> tuple[int, str]:
    """The close code and message of a socket the box closes (messages before skipped)."""
    message = await ws.receive(timeout=10)
    while message.type == aiohttp.WSMsgType.TEXT:
        message = await ws.receive(timeout=10)
    assert message.type == aiohttp.WSMsgType.CLOSE, message
    return int(message.data), str(message.extra)


@pytest.fixture
async def scene(live_server: LiveServer, request: pytest.FixtureRequest) -> AsyncIterator[Scene]:
    """A connected call with media both ways, and its handler's console signed in; the
    caller agreed to recording when the test asks (``indirect`` parameter True)."""
    recording = bool(getattr(request, "param", False))
    with live_server.db.session() as session:
        officer = add_user(session, "pc7", Role.HANDLER)
        incident = add_incident(session, officer, "CAD/VIEW/1")
        _, call, token = invites.create_invite(
            session, Actor("pc7"), incident, officer, timedelta(hours=1)
        )
        invites.record_consent(
            session,
            call,
            Consent(True, recording, False),
            hashlib.sha256(DEVICE.encode()).hexdigest(),
            "",
        )
        public_id = call.public_id
    client = FormClient(live_server.base_url)
    await client.sign_in("pc7", PASSWORD)
    await client.get(f"/calls/{public_id}")  # the signed-in session's CSRF token
    async with caller_http(live_server, DEVICE) as phone:
        caller_ws = await phone.ws_connect(ws_url(live_server, f"/ws/v/{token}"))
        handler_ws = await client.session.ws_connect(ws_url(live_server, f"/ws/calls/{public_id}"))
        caller, handler = Client("caller"), Client("handler")
        scene = Scene(live_server, public_id, client, caller_ws, handler_ws, [caller, handler])
        scene.clients.append(client)
        scene.sockets += [caller_ws, handler_ws]
        try:
            for ws, peer in ((caller_ws, caller), (handler_ws, handler)):
                await receive(ws, "hello")
                await ws.send_json({"type": "join", "sdp": await peer.offer()})
                await peer.accept((await receive(ws, "answer"))["sdp"])
            await until(lambda: handler.video_frames > 5 and caller.video_frames > 5, 20, "media")
            yield scene
        finally:
            for socket in scene.sockets:
                await socket.close()
            for peer in scene.peers:
                await peer.close()
            for each in scene.clients:
                await each.close()


async def test_two_viewers_at_once_both_receive_the_caller_and_send_nothing(
    scene: Scene,
) -> None:
    """Two links, two phones: each viewer's receive-only leg gets the caller's video; the
    handler's and (by default) the caller's pages name both; the metric counts them; a
    viewer may not chat or offer to send; the call does not move."""
    first, second = await scene.make_link("PC 1 Khan"), await scene.make_link("SOCO Jones")
    (ws1, viewer1), (ws2, viewer2) = await scene.watch(first), await scene.watch(second)
    await until(
        lambda: viewer1.frames_by_mid.get("1", 0) > 10 and viewer2.frames_by_mid.get("1", 0) > 10,
        20,
        "the caller's video at both viewers",
    )
    assert viewer1.audio_frames > 0 and viewer2.audio_frames > 0  # the caller heard too

    told = await receive(scene.caller_ws, "state")
    while len(told["viewers"]) < 2:  # the states from before the second viewer are queued
        told = await receive(scene.caller_ws, "state")
    assert sorted(v["name"] for v in told["viewers"]) == ["PC 1 Khan", "SOCO Jones"]
    assert {f"viewer-{first['id']}", f"viewer-{second['id']}"} <= set(told["present"])

    hub = scene.server.app[keys.HUB]
    hub.sampler.count_attendees()
    assert metrics.REGISTRY.get_sample_value("evr_call_attendees", {"role": "viewer"}) == 2

    await ws1.send_json({"type": "chat", "text": "on my way"})
    assert (await receive(ws1, "error"))["code"] == "not_allowed"
    sending = Client("sending")
    scene.peers.append(sending)
    await ws2.send_json({"type": "restart", "sdp": await sending.offer()})
    assert "only receives" in (await receive(ws2, "error"))["message"]

    await ws1.send_json({"type": "end"})  # a viewer's End leaves; the call goes on
    assert (await _closed_with(ws1))[0] == 1000
    with scene.server.db.session() as session:
        assert states.get(session, scene.public_id).state == "connected"
    assert not scene.handler_ws.closed and not scene.caller_ws.closed
    made = [e for e in scene.audit() if e.action == "viewer.link_made"]
    opened = [e for e in scene.audit() if e.action == "viewer.opened"]
    assert len(made) == 2 and made[0].actor == "pc7" and made[0].detail["name"] == "PC 1 Khan"
    assert sorted(e.detail["viewer"] for e in opened) == [first["id"], second["id"]]


async def test_a_revoked_link_is_refused_with_4006_and_says_why(scene: Scene) -> None:
    """The officer revokes a link being watched: that viewer's socket closes with 4006
    and the reason, the other viewer keeps watching; the link then refuses its socket
    (4006 again) and its page (410), and every step is audited."""
    kept, revoked = await scene.make_link("PC 1 Khan"), await scene.make_link("PC 2 Ode")
    _, keeper = await scene.watch(kept)
    ws, _ = await scene.watch(revoked)
    phone = scene.clients[-1]

    response, body = await scene.officer.post(
        f"/calls/{scene.public_id}/viewers/{revoked['id']}/revoke", {}
    )
    assert response.status == 200 and json.loads(body)["revoked"] == f"viewer-{revoked['id']}"
    assert await _closed_with(ws) == (4006, "the officer revoked this link")

    again = await scene.socket(phone, _path(revoked))
    assert await _closed_with(again) == (4006, "the officer revoked this link")
    response, page = await phone.get(_path(revoked))
    assert response.status == 410 and "revoked" in page
    response, body = await scene.officer.post(
        f"/calls/{scene.public_id}/viewers/{revoked['id']}/revoke", {}
    )
    assert response.status == 409 and "already revoked" in body

    before = keeper.video_frames
    await until(lambda: keeper.video_frames > before + 10, 10, "the other viewer's frames")
    actions = [(e.action, e.detail.get("problem")) for e in scene.audit()]
    assert ("viewer.link_revoked", None) in actions
    assert actions.count(("viewer.link_refused", "revoked")) == 2  # the socket and the page
    revoking = next(e for e in scene.audit() if e.action == "viewer.link_revoked")
    assert revoking.actor == "pc7" and revoking.detail["viewer"] == revoked["id"]


async def test_a_link_of_another_call_is_refused(scene: Scene) -> None:
    """A link presented with another live call's id opens nothing there: the page is
    404, the socket closes with 4007 and the reason, and the refusal is audited on the
    link's own call; the officer of the other call cannot revoke it either."""
    link = await scene.make_link()
    phone = await scene.device(link)
    other = connected_call(scene.server.db, scene.server.settings, "pc8", "CAD/VIEW/2")
    token = link["link"].rsplit("/", 1)[1]
    elsewhere = f"/w/{other}/{token}"
    response, _ = await phone.get(elsewhere)
    assert response.status == 404
    ws = await scene.socket(phone, elsewhere)
    assert await _closed_with(ws) == (4007, "this link is for another call")
    refused = [e for e in scene.audit() if e.action == "viewer.link_refused"]
    assert [e.detail["problem"] for e in refused] == ["other_call", "other_call"]
    assert refused[0].detail["presented_for"] == other

    officer = FormClient(scene.server.base_url)
    scene.clients.append(officer)
    await officer.sign_in("pc8", PASSWORD)
    await officer.get(f"/calls/{other}")
    response, body = await officer.post(f"/calls/{other}/viewers/{link['id']}/revoke", {})
    assert response.status == 409 and "no such viewer link" in body


async def test_the_link_dies_with_the_call(scene: Scene) -> None:
    """The handler ends the call: the viewer is told it ended and its socket closes; the
    link then refuses its socket (4007, the call has ended) and its page (410)."""
    link = await scene.make_link()
    ws, _ = await scene.watch(link)
    phone = scene.clients[-1]
    await scene.handler_ws.send_json({"type": "end"})
    assert (await receive(ws, "ended"))["state"] == "ended"
    # Every page's socket closes (each close waits for its page's reply, so all are read).
    closes = await asyncio.gather(
        _closed_with(ws), _closed_with(scene.caller_ws), _closed_with(scene.handler_ws)
    )
    assert [code for code, _ in closes] == [1000, 1000, 1000]

    again = await scene.socket(phone, _path(link))
    assert await _closed_with(again) == (4007, "the call has ended: the link ended with it")
    response, page = await phone.get(_path(link))
    assert response.status == 410 and "finished" in page
    response, body = await scene.officer.post(
        f"/calls/{scene.public_id}/viewers", {"name": "too late"}
    )
    assert response.status == 409 and "connected call" in body
    problems = [e.detail["problem"] for e in scene.audit() if e.action == "viewer.link_refused"]
    assert problems == ["ended", "ended"]


async def test_a_link_bound_to_the_first_device_refuses_a_second(scene: Scene) -> None:
    """Opening the link binds nothing (a previewer cannot burn it); the first Watch binds
    it; a second phone (one that had the page open before) then cannot press Watch
    (409), gets the page refused (409), and its socket closes with 4007; the first phone
    still watches."""
    link = await scene.make_link()
    previewer = FormClient(scene.server.base_url)
    scene.clients.append(previewer)
    response, _ = await previewer.get(_path(link))
    assert response.status == 200
    with scene.server.db.session() as session:
        assert session.get(ViewerLink, link["id"]).device_hash is None

    _, viewer = await scene.watch(link)
    response, _ = await previewer.post(_path(link), {})  # Watch pressed too late
    assert response.status == 409
    response, page = await previewer.get(_path(link))
    assert response.status == 409 and "another device" in page
    ws = await scene.socket(previewer, _path(link))
    assert await _closed_with(ws) == (4007, "this link is open on another device")
    await until(lambda: viewer.frames_by_mid.get("1", 0) > 5, 20, "the first phone's frames")
    problems = [e.detail["problem"] for e in scene.audit() if e.action == "viewer.link_refused"]
    assert problems == ["other_device"] * 3


async def test_a_viewer_is_not_shown_to_the_caller_when_the_force_says_so(scene: Scene) -> None:
    """With ``viewers_shown_to_caller`` off, the caller's socket hears nothing of a viewer
    (no presence, no name, not in ``present``) while the handler's console lists them."""
    scene.server.settings.viewers_shown_to_caller = False
    link = await scene.make_link("SOCO Jones")
    await scene.watch(link)
    state = await receive(scene.handler_ws, "state")
    while not state["viewers"]:
        state = await receive(scene.handler_ws, "state")
    assert [v["name"] for v in state["viewers"]] == ["SOCO Jones"]

    await scene.caller_ws.send_json({"type": "ping"})
    heard = []
    while (message := await _next(scene.caller_ws))["type"] != "pong":
        heard.append(message)
    assert heard, "the caller's page was sent the call's state as the viewer came"
    leg = f"viewer-{link['id']}"
    assert not any(m["type"] == "presence" and m["role"] == "viewer" for m in heard)
    assert all(
        m["viewers"] == [] and leg not in m["present"] for m in heard if m["type"] == "state"
    )


@pytest.mark.parametrize("scene", [True], indirect=True)
async def test_viewers_add_nothing_to_the_recording(scene: Scene) -> None:
    """A recorded call with a viewer watching: the recording holds the caller's video, the
    caller's and the handler's audio and the tracks kept for guests (guests_max, empty
    here), as without one. A viewer is a "guest" leg in the media room that sends
    nothing: no track is given to it, and the record of whose tracks they are names none."""
    await until(lambda: bool(_recordings(scene)), 10, "the recording to start")
    ws, viewer = await scene.watch(await scene.make_link())
    await until(lambda: viewer.frames_by_mid.get("1", 0) > 10, 20, "the viewer's frames")
    await scene.handler_ws.send_json({"type": "end"})
    await receive(ws, "ended")
    await asyncio.gather(
        _closed_with(ws), _closed_with(scene.caller_ws), _closed_with(scene.handler_ws)
    )
    # The pages hear the end before the recording is sealed (the hub tells them first).
    await until(lambda: _recordings(scene)[0].status != "recording", 20, "the seal")
    [recording] = _recordings(scene)
    assert recording.status == "complete", recording.status
    guests_max = scene.server.settings.guests_max
    assert recording.audio_codecs.split(",") == ["opus"] * (2 + guests_max)
    assert recording.video_codec  # the caller's video
    [finished] = scene.audit("recording.finished")
    held = [leg for track in finished.detail["tracks"] for leg in track["held"]]
    assert held and all(leg["role"] in ("caller", "handler") for leg in held), held


def _recordings(scene: Scene) -> list[Recording]:
    with scene.server.db.session() as session:
        call = states.get(session, scene.public_id)
        return list(session.exec(select(Recording).where(Recording.call_id == call.id)).all())


async def test_a_viewer_keeps_watching_through_a_take_over(scene: Scene) -> None:
    """A supervisor takes the call over while a responder watches: the viewer's socket
    stays open and the caller's video keeps arriving; the supervisor, now the handler,
    is told of the viewer and can revoke the link (audited as theirs)."""
    link = await scene.make_link("PC 9 Patel")
    ws, viewer = await scene.watch(link)
    await until(lambda: viewer.frames_by_mid.get("1", 0) > 5, 20, "the caller's video")
    with scene.server.db.session() as session:
        add_user(session, "sgt1", Role.SUPERVISOR)
    sergeant = FormClient(scene.server.base_url)
    scene.clients.append(sergeant)
    await sergeant.sign_in("sgt1", PASSWORD)
    await sergeant.get(f"/calls/{scene.public_id}")
    response, body = await sergeant.post(
        f"/calls/{scene.public_id}/take-over", {"reason": "escalating"}
    )
    assert response.status == 200, body
    assert (await _closed_with(scene.handler_ws))[0] == 4004

    supervisor_ws = await scene.socket(sergeant, f"/calls/{scene.public_id}")
    supervisor = Client("supervisor")
    scene.peers.append(supervisor)
    hello = await receive(supervisor_ws, "hello")
    assert hello["role"] == "handler"
    assert [v["name"] for v in hello["viewers"]] == ["PC 9 Patel"]
    await supervisor_ws.send_json({"type": "join", "sdp": await supervisor.offer()})
    await supervisor.accept((await receive(supervisor_ws, "answer"))["sdp"])
    before = viewer.frames_by_mid.get("1", 0)
    await until(
        lambda: viewer.frames_by_mid.get("1", 0) > before + 15, 20, "video after the take-over"
    )
    assert not ws.closed

    response, _ = await sergeant.post(f"/calls/{scene.public_id}/viewers/{link['id']}/revoke", {})
    assert response.status == 200
    assert await _closed_with(ws) == (4006, "the officer revoked this link")
    revoking = next(e for e in scene.audit() if e.action == "viewer.link_revoked")
    assert revoking.actor == "sgt1"
