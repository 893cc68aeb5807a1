"""A caller who ended the call by mistake comes back on the same link for a few minutes.

The rejoin is a new call on the same invite and incident that asks for consent again
and waits for the officer like any call; the call's end (the CAD's ``call.ended``, the
survey offer) is held while the window is open and goes out exactly once. After the
window, after the officer's own End, after a revoke, and on an RVR call, "Rejoin the
call" is refused with a page that says why. docs/signalling.md, "A caller who ended by
mistake", holds the decisions.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import col, select

from appliance.config import Settings
from appliance.models import (
    AuditEvent,
    CadDelivery,
    Call,
    CallState,
    Role,
    SurveyLink,
    utcnow,
)
from appliance.services.audit import Actor
from appliance.services.calls import invites, life, states
from appliance.services.identity import accounts
from appliance.web import keys
from tests.support.cad_receiver import CadReceiver, running_receiver, settings_for
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.peers import Client
from tests.support.staff import PASSWORD, add_incident, add_user

pytestmark = pytest.mark.sqlite_only(
    reason="the rules are the services' and the pages'; real aiortc peers on the socket"
)


@pytest.fixture
async def cad_receiver() -> AsyncIterator[CadReceiver]:
    async with running_receiver() as receiver:
        yield receiver


@pytest.fixture
def settings(tmp_path: Path, database_url: str, cad_receiver: CadReceiver) -> Settings:
    return settings_for(tmp_path, database_url, cad_receiver, media_allow_loopback=True)


async def _link(live_server: LiveServer, caller: FormClient, category: str = "Theft") -> str:
    """A video link the caller has agreed to on their phone (the real consent form)."""
    with live_server.db.session() as session:
        user = accounts.get_by_username(session, "pc1") or add_user(
            session, "pc1", Role.HANDLER, Role.RVR_OFFICER
        )
        incident = add_incident(session, user, "CAD/REJOIN/1", category=category)
        _, _, token = invites.create_invite(
            session, Actor("pc1"), incident, user, timedelta(hours=1)
        )
    await caller.get(f"/v/{token}")
    response, _ = await caller.post(f"/v/{token}", {"consent_video": "yes"})
    assert response.status == 303
    return token


def _calls(live_server: LiveServer) -> list[Call]:
    with live_server.db.session() as session:
        return list(session.exec(select(Call).order_by(col(Call.id))).all())


def _ended_events(live_server: LiveServer) -> list[dict[str, Any]]:
    """Every ``call.ended`` queued for the CAD, as its body says."""
    with live_server.db.session() as session:
        rows = session.exec(select(CadDelivery).where(CadDelivery.event == "call.ended")).all()
        return [json.loads(row.body)["data"]["call"] for row in rows]


def _survey_offers(live_server: LiveServer) -> int:
    with live_server.db.session() as session:
        return len(session.exec(select(SurveyLink)).all())


def _connect_and_end_by_caller(live_server: LiveServer) -> Call:
    """Connected by the officer, then ended with the caller's own End (the service the
    socket's End calls): the window opens. No media: the refusals are about the link."""
    with live_server.db.session() as session:
        call = session.exec(select(Call)).one()
        states.caller_waiting(session, call, "")
        life.admit(session, live_server.settings, call, accounts.require(session, "pc1"), "")
        life.end(session, live_server.settings, call, Actor("caller", ""), life.CALLER_ENDED)
        return call


async def _receive(ws: aiohttp.ClientWebSocketResponse, wanted: str) -> dict[str, Any]:
    while True:
        message = await ws.receive(timeout=20)
        assert message.type == aiohttp.WSMsgType.TEXT, f"closed waiting for {wanted}"
        data = json.loads(message.data)
        if data["type"] == wanted:
            return data


async def _join(ws: aiohttp.ClientWebSocketResponse, peer: Client) -> dict[str, Any]:
    hello = await _receive(ws, "hello")
    await ws.send_json({"type": "join", "sdp": await peer.offer()})
    await peer.accept((await _receive(ws, "answer"))["sdp"])
    return hello


async def test_a_caller_who_ended_rejoins_within_the_window_and_waits_again(
    live_server: LiveServer, caller: FormClient
) -> None:
    """The caller ends a connected call themselves (the service the socket's End calls;
    test_call_endings.py drives the socket): the ended page offers "Rejoin the call" and
    the CAD hears nothing yet. Rejoining makes a second call on the same invite, which
    asks for consent again, then waits for the officer when a real aiortc peer joins (the
    console is told it is a rejoin). The first call's end reaches the CAD once, at the
    rejoin; the survey is offered once, when the rejoined call ends. The console page of
    the rejoin says the caller came back."""
    token = await _link(live_server, caller)
    first = _connect_and_end_by_caller(live_server)
    officer = FormClient(live_server.base_url)
    peer = Client("caller")
    try:
        response, body = await caller.get(f"/v/{token}/status")
        status = json.loads(body)
        assert status["live"] is False and 290 <= status["rejoinSeconds"] <= 300
        response, page = await caller.get(f"/v/{token}")
        assert response.status == 410 and "Rejoin the call" in page
        assert "Ended by mistake?" in page and 'data-seconds="' in page
        assert _ended_events(live_server) == [] and _survey_offers(live_server) == 0

        response, _ = await caller.post(f"/v/{token}/rejoin")
        assert response.status == 303 and response.headers["Location"] == f"/v/{token}"
        response, page = await caller.get(f"/v/{token}")
        assert response.status == 200 and "Can we record the call?" in page  # asked again
        response, _ = await caller.post(
            f"/v/{token}", {"consent_video": "yes", "consent_recording": "no"}
        )
        assert response.status == 303
        wss = live_server.base_url.replace("https://", "wss://")
        async with caller.session.ws_connect(f"{wss}/ws/v/{token}") as caller_ws:
            hello = await _join(caller_ws, peer)
            assert hello["rejoin"] is True
            assert (await _receive(caller_ws, "state"))["state"] == "waiting"
            first, second = _calls(live_server)
            assert second.state == CallState.WAITING and second.rejoin_of_id == first.id
            assert second.invite_id == first.invite_id
            assert second.incident_id == first.incident_id
            assert not second.consent_recording and first.rejoin_until is None
            assert _ended_events(live_server) == [
                {"id": first.public_id, "state": "ended", "reason": "caller_ended"}
            ]
            assert _survey_offers(live_server) == 0

            await officer.sign_in("pc1", PASSWORD)
            await officer.get("/incidents")  # the session's CSRF token
            response, console = await officer.get(f"/calls/{second.public_id}")
            assert "has come back on the same link" in console  # the console says so
            response, _ = await officer.post(f"/calls/{second.public_id}/end", {})
            assert response.status == 303
            await _receive(caller_ws, "ended")
        assert [e["id"] for e in _ended_events(live_server)] == [
            first.public_id,
            second.public_id,
        ]
        assert _survey_offers(live_server) == 1
        response, page = await caller.get(f"/v/{token}")
        assert response.status == 410 and "Rejoin the call" not in page
    finally:
        await peer.close()
        await officer.close()


async def test_revoking_the_link_from_the_first_call_withdraws_a_waiting_rejoin(
    live_server: LiveServer, caller: FormClient
) -> None:
    """The caller ended, rejoined and waits (a real aiortc peer on the socket); the
    officer revokes the link from the incident page's first call, the one they know.
    The rejoin is cancelled, not left in the queue: the caller's socket hears the call
    ended, the CAD hears each call end once, the survey is offered once."""
    token = await _link(live_server, caller)
    first = _connect_and_end_by_caller(live_server)
    officer = FormClient(live_server.base_url)
    peer = Client("caller")
    try:
        response, _ = await caller.post(f"/v/{token}/rejoin")
        assert response.status == 303
        response, _ = await caller.post(f"/v/{token}", {"consent_video": "yes"})
        assert response.status == 303
        wss = live_server.base_url.replace("https://", "wss://")
        async with caller.session.ws_connect(f"{wss}/ws/v/{token}") as caller_ws:
            await _join(caller_ws, peer)
            assert (await _receive(caller_ws, "state"))["state"] == "waiting"
            await officer.sign_in("pc1", PASSWORD)
            await officer.get("/incidents")
            await _revoked(live_server, officer, first)
            ended = await _receive(caller_ws, "ended")
            assert ended["state"] == "cancelled" and ended["reason"] == "revoked"
        _, second = _calls(live_server)
        assert second.state == CallState.CANCELLED and second.end_reason == "revoked"
        assert [e["id"] for e in _ended_events(live_server)] == [
            first.public_id,
            second.public_id,
        ]
        assert _survey_offers(live_server) == 1
        response, page = await caller.get(f"/v/{token}")
        assert response.status == 410 and "This link is no longer in use" in page
    finally:
        await peer.close()
        await officer.close()


def _lapse(live_server: LiveServer) -> None:
    """The window runs out: the sampler's tick, run now rather than waited for."""
    with live_server.db.session() as session:
        call = session.exec(select(Call)).one()
        if call.rejoin_until is not None:
            call.rejoin_until = utcnow() - timedelta(seconds=1)
            session.add(call)
    assert live_server.app is not None
    live_server.app[keys.HUB].sampler.close_lapsed_rejoins()


async def _officer_ends(live_server: LiveServer, officer: FormClient, call: Call) -> None:
    response, _ = await officer.post(f"/calls/{call.public_id}/end", {})
    assert response.status == 303


async def _revoked(live_server: LiveServer, officer: FormClient, call: Call) -> None:
    response, _ = await officer.post(f"/calls/{call.public_id}/revoke", {})
    assert response.status == 303


CLOSED = {
    "the window ran out": ("You can no longer rejoin this call", "rejoin_lapsed"),
    "the officer ended it": ("You can no longer rejoin this call", "handler_ended"),
    "the link was revoked": ("This link is no longer in use", "revoked"),
}


@pytest.mark.parametrize("how", list(CLOSED))
async def test_rejoining_is_refused_once_the_window_is_closed(
    live_server: LiveServer, caller: FormClient, how: str
) -> None:
    """The caller ended the call; then the window runs out, the officer presses End on
    the console, or the link is revoked: the ended page offers no rejoin, "Rejoin the
    call" answers 410 with a page saying why and makes no call, and the held end goes
    out once (one call.ended, one survey offer) however many of these follow."""
    title, why = CLOSED[how]
    token = await _link(live_server, caller)
    call = _connect_and_end_by_caller(live_server)
    assert _ended_events(live_server) == [] and _survey_offers(live_server) == 0
    officer = FormClient(live_server.base_url)
    try:
        await officer.sign_in("pc1", PASSWORD)
        await officer.get("/incidents")
        if how == "the window ran out":
            _lapse(live_server)
        elif how == "the officer ended it":
            await _officer_ends(live_server, officer, call)
        else:
            await _revoked(live_server, officer, call)

        response, page = await caller.get(f"/v/{token}")
        assert response.status == 410 and "Rejoin the call" not in page
        response, body = await caller.get(f"/v/{token}/status")
        assert json.loads(body)["rejoinSeconds"] == 0
        response, page = await caller.post(f"/v/{token}/rejoin")
        assert response.status == 410 and title in page
        assert len(_calls(live_server)) == 1

        await _officer_ends(live_server, officer, call)
        await _revoked(live_server, officer, call)
        _lapse(live_server)
    finally:
        await officer.close()
    assert _ended_events(live_server) == [
        {"id": call.public_id, "state": "ended", "reason": "caller_ended"}
    ]
    assert _survey_offers(live_server) == 1
    with live_server.db.session() as session:
        closed = session.exec(
            select(AuditEvent).where(AuditEvent.action == "call.rejoin_closed")
        ).all()
        assert [e.detail["why"] for e in closed] == [why]


async def test_an_rvr_call_and_a_window_of_zero_offer_no_rejoin(
    live_server: LiveServer, caller: FormClient
) -> None:
    """An RVR caller who ends the call is not offered a way back (a watched phone must not
    reopen a call by a tap), nor is any caller when the setting is 0: the end goes out at
    once, and "Rejoin the call" is refused."""
    token = await _link(live_server, caller, category="Domestic abuse")
    call = _connect_and_end_by_caller(live_server)
    assert [e["id"] for e in _ended_events(live_server)] == [call.public_id]
    response, body = await caller.get(f"/v/{token}/status")
    assert json.loads(body) == {"live": False, "rejoinSeconds": 0}
    response, page = await caller.post(f"/v/{token}/rejoin")
    assert response.status == 410 and "You can no longer rejoin this call" in page
    assert 'id="quick-exit"' in page  # an RVR page, still with its quick exit

    live_server.settings.caller_rejoin_minutes = 0
    with live_server.db.session() as session:
        user = accounts.require(session, "pc1")
        incident = add_incident(session, user, "CAD/REJOIN/2")
        _, second, _ = invites.create_invite(
            session, Actor("pc1"), incident, user, timedelta(hours=1)
        )
        states.caller_waiting(session, second, "")
        life.admit(session, live_server.settings, second, user, "")
        life.end(session, live_server.settings, second, Actor("caller", ""), life.CALLER_ENDED)
        assert second.rejoin_until is None
    assert [e["id"] for e in _ended_events(live_server)] == [call.public_id, second.public_id]
