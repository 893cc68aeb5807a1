"""A guest's one-call link: who may make it, one device, removal, and death with the call."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlmodel import select

from appliance.config import Settings
from appliance.db import Database
from appliance.models import AuditEvent, Call, GuestInvite, User
from appliance.services.audit import Actor
from appliance.services.calls import guests, states
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, connected_call

pytestmark = pytest.mark.sqlite_only(
    reason="the guest's leg over the signalling socket is under test, not the database"
)


@pytest.fixture
async def officer(live_server: LiveServer) -> AsyncIterator[tuple[FormClient, str]]:
    """A signed-in handler whose caller is connected (the media is not needed here)."""
    public_id = connected_call(live_server.db, live_server.settings, "pc4", "CAD/G/1")
    client = FormClient(live_server.base_url)
    await client.sign_in("pc4", PASSWORD)
    await client.get(f"/calls/{public_id}")
    try:
        yield client, public_id
    finally:
        await client.close()


async def _invite(client: FormClient, public_id: str, **form: str) -> tuple[int, dict]:
    response, body = await client.post(
        f"/calls/{public_id}/guests", {"role": "interpreter", "name": "Ana Silva", **form}
    )
    return response.status, json.loads(body)


def _ws_url(server: LiveServer, path: str) -> str:
    return server.base_url.replace("https://", "wss://") + path


def _path(link: str) -> str:
    return "/g/" + link.rsplit("/g/", 1)[1]


async def test_a_guest_joins_by_role_and_the_officer_removes_them(
    live_server: LiveServer, officer: tuple[FormClient, str]
) -> None:
    client, public_id = officer
    status, answer = await _invite(client, public_id)
    assert status == 200 and answer["label"] == "Interpreter"
    guest = FormClient(live_server.base_url)
    stranger = FormClient(live_server.base_url)
    try:
        response, page = await guest.get(_path(answer["link"]))
        assert response.status == 200 and "Interpreter" in page and "Ana Silva" in page
        response, _ = await guest.post(_path(answer["link"]), {})  # the explicit Join
        assert response.status == 303
        response, page = await stranger.get(_path(answer["link"]))
        assert response.status == 409 and "another device" in page

        async with (
            guest.session.ws_connect(_ws_url(live_server, "/ws" + _path(answer["link"]))) as ws,
            client.session.ws_connect(_ws_url(live_server, f"/ws/calls/{public_id}")) as console,
        ):
            hello = json.loads((await ws.receive(timeout=10)).data)
            assert hello["role"] == "guest" and hello["state"] == "connected"
            console_hello = json.loads((await console.receive(timeout=10)).data)
            assert console_hello["guests"] == [
                {
                    "leg": f"guest-{answer['id']}",
                    "role": "interpreter",
                    "label": "Interpreter",
                    "name": "Ana Silva",
                }
            ]
            response, _ = await client.post(f"/calls/{public_id}/guests/{answer['id']}/remove", {})
            assert response.status == 200
            closed = await ws.receive(timeout=10)
            while closed.type == aiohttp.WSMsgType.TEXT:
                closed = await ws.receive(timeout=10)
            assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 4001
            assert not console.closed  # only the guest's part ended

        response, page = await guest.get(_path(answer["link"]))
        assert response.status == 410 and "You have left this call" in page
    finally:
        await guest.close()
        await stranger.close()
    with live_server.db.session() as session:
        actions = [
            e.action
            for e in session.exec(select(AuditEvent).where(AuditEvent.object_id == public_id))
        ]
        # No media was offered here, so no guest.joined (the browser test sees that one).
        assert {"guest.invited", "guest.removed", "guest.link_refused"} <= set(actions)
        call = states.by_public_id(session, public_id)
        assert call is not None and call.state == "connected"


async def test_a_guest_link_reused_after_the_call_is_refused(
    live_server: LiveServer, officer: tuple[FormClient, str]
) -> None:
    """Tried: the guest's own device opens its link, and its socket, after the call ended."""
    client, public_id = officer
    _, answer = await _invite(client, public_id, role="second_officer", name="PC 12 Byrne")
    guest = FormClient(live_server.base_url)
    try:
        response, _ = await guest.get(_path(answer["link"]))
        assert response.status == 200
        response, _ = await guest.post(_path(answer["link"]), {})  # the explicit Join
        assert response.status == 303
        response, _ = await client.post(f"/calls/{public_id}/end", {})
        assert response.status == 303
        response, page = await guest.get(_path(answer["link"]))
        assert response.status == 410 and "This call has finished" in page
        with pytest.raises(aiohttp.WSServerHandshakeError) as raised:
            async with guest.session.ws_connect(
                _ws_url(live_server, "/ws" + _path(answer["link"]))
            ):
                pass
        assert raised.value.status == 403
        status, refused = await _invite(client, public_id)
        assert status == 409 and "connected call" in refused["error"]
    finally:
        await guest.close()
    with live_server.db.session() as session:
        refusals = session.exec(
            select(AuditEvent).where(AuditEvent.action == "guest.link_refused")
        ).all()
        assert refusals and all(e.detail["problem"] == "ended" for e in refusals)
        assert len(session.exec(select(GuestInvite)).all()) == 1
        call = session.exec(select(Call).where(Call.public_id == public_id)).one()
        assert call.state == "ended"


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"role": "journalist"}, "choose the guest's role"),
        ({"name": "  "}, "give the guest's name"),
    ],
)
async def test_a_bad_guest_invite_is_refused_and_makes_no_link(
    live_server: LiveServer, officer: tuple[FormClient, str], form: dict, error: str
) -> None:
    client, public_id = officer
    status, answer = await _invite(client, public_id, **form)
    assert status == 409 and error in answer["error"]
    with live_server.db.session() as session:
        assert session.exec(select(GuestInvite)).all() == []


async def test_a_guest_beyond_guests_max_is_refused_and_says_why(
    live_server: LiveServer, officer: tuple[FormClient, str]
) -> None:
    """Tried: three invites on one call (the default `guests_max`), then a fourth; then
    one guest removed and the fourth asked again."""
    client, public_id = officer
    assert live_server.settings.guests_max == 3
    made = []
    for name in ("Ana Silva", "PC 12 Byrne", "Sam Lee"):
        status, answer = await _invite(client, public_id, name=name)
        assert status == 200, answer
        made.append(answer["id"])
    status, refused = await _invite(client, public_id, name="Jo Kay")
    assert status == 409
    assert refused["error"] == (
        "this call already has 3 guests, the most this box allows on one call: remove one first"
    )
    response, _ = await client.post(f"/calls/{public_id}/guests/{made[1]}/remove", {})
    assert response.status == 200
    status, answer = await _invite(client, public_id, name="Jo Kay")
    assert status == 200 and answer["name"] == "Jo Kay"
    with live_server.db.session() as session:
        assert len(session.exec(select(GuestInvite)).all()) == 4


async def test_every_page_is_told_how_many_guest_slots_to_offer(
    live_server: LiveServer, officer: tuple[FormClient, str]
) -> None:
    """The hello carries `guestSlots` (= `guests_max`): the pages offer that many receive
    slots when they join, so a guest arriving later renegotiates nobody."""
    client, public_id = officer
    async with client.session.ws_connect(_ws_url(live_server, f"/ws/calls/{public_id}")) as ws:
        hello = json.loads((await ws.receive(timeout=10)).data)
    assert hello["type"] == "hello" and hello["guestSlots"] == 3


def test_the_recording_record_says_whose_each_track_is(db: Database, settings: Settings) -> None:
    """Tried: the media room reports which legs its tracks held (as `RecordingInfo.
    track_legs`); the record names the caller, the handler and each guest by role and
    name, a track that passed from one guest to another naming both in order."""
    public_id = connected_call(db, settings, "pc5", "CAD/G/2")
    with db.session() as session:
        call = states.get(session, public_id)
        officer = session.exec(select(User).where(User.username == "pc5")).one()
        ana, _ = guests.invite(session, Actor("pc5"), officer, call, "interpreter", "Ana Silva")
        sam, _ = guests.invite(session, Actor("pc5"), officer, call, "second_officer", "Sam Lee")
        tracks = guests.whose_tracks(
            session,
            call,
            {
                "caller_audio": ["caller"],
                "handler_audio": ["handler"],
                "guest_audio_1": [guests.leg_id(ana), guests.leg_id(sam)],
            },
        )
    assert tracks == [
        {"track": "caller_audio", "held": [{"leg": "caller", "role": "caller"}]},
        {"track": "handler_audio", "held": [{"leg": "handler", "role": "handler"}]},
        {
            "track": "guest_audio_1",
            "held": [
                {
                    "leg": f"guest-{ana.id}",
                    "role": "interpreter",
                    "label": "Interpreter",
                    "name": "Ana Silva",
                },
                {
                    "leg": f"guest-{sam.id}",
                    "role": "second_officer",
                    "label": "Second officer",
                    "name": "Sam Lee",
                },
            ],
        },
    ]
