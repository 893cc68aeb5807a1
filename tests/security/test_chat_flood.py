"""Chat floods (issue 16, item 3): one socket may send so many messages a minute, a call
holds so many, and the console renders only the latest page of them."""

from __future__ import annotations

import asyncio
import re
import threading
import time

import aiohttp
import pytest
from sqlmodel import select

from appliance.config import Settings
from appliance.models import ChatMessage, Role
from appliance.services.calls import states
from tests.support.hostile import caller_http, consented_call, receive, ws_url
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_user

pytestmark = pytest.mark.sqlite_only(
    reason="the socket's rate and the page's size are under test; chat rows are plain inserts"
)

PER_MINUTE = 4
PER_CALL = 12
SHOWN = 10
MESSAGES = 30


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "chat_per_minute": PER_MINUTE,
            "chat_max_per_call": PER_CALL,
            "console_chat_shown": SHOWN,
            "socket_messages_per_minute": MESSAGES,
        }
    )


def _waiting(server: LiveServer, public_id: str) -> None:
    """The caller has joined (the media join itself is not what is under test)."""
    with server.db.session() as session:
        states.caller_waiting(session, states.get(session, public_id), "")


def _stored(server: LiveServer, public_id: str) -> int:
    with server.db.reader() as session:
        return states.chat_count(session, states.get(session, public_id))


async def test_a_socket_flooding_chat_is_rate_limited_and_still_served(
    live_server: LiveServer,
) -> None:
    """Twenty messages of 2000 characters at once: four are stored and passed on, the
    rest answered `rate_limited` and dropped; the socket still answers a ping."""
    invited = consented_call(live_server, "pc1", "CAD/CF/1")
    _waiting(live_server, invited.call.public_id)
    async with (
        caller_http(live_server) as http,
        http.ws_connect(ws_url(live_server, f"/ws/v/{invited.token}")) as ws,
    ):
        await receive(ws, "hello")
        for _ in range(20):
            await ws.send_json({"type": "chat", "text": "x" * 2000})
        replies = [await receive(ws, "chat") for _ in range(PER_MINUTE)]
        errors = [await receive(ws, "error") for _ in range(20 - PER_MINUTE)]
        await ws.send_json({"type": "ping"})
        await receive(ws, "pong")
    assert len(replies) == PER_MINUTE
    assert {e["code"] for e in errors} == {"rate_limited"}
    assert _stored(live_server, invited.call.public_id) == PER_MINUTE


async def test_a_socket_flooding_any_message_is_closed(live_server: LiveServer) -> None:
    """Pings as fast as the socket takes them: the first 30 are answered, then the box
    closes the socket (1008) instead of answering a flood, and again at once when the
    same caller comes back within the minute."""
    invited = consented_call(live_server, "pc1", "CAD/CF/4")
    async with caller_http(live_server) as http:
        async with http.ws_connect(ws_url(live_server, f"/ws/v/{invited.token}")) as ws:
            await receive(ws, "hello")
            for _ in range(MESSAGES + 10):
                await ws.send_json({"type": "ping"})
            pongs = [await receive(ws, "pong") for _ in range(MESSAGES)]
            closing = await ws.receive(timeout=10)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == 1008
        assert len(pongs) == MESSAGES
        # Coming back does not buy a new allowance: the next message closes it again.
        async with http.ws_connect(ws_url(live_server, f"/ws/v/{invited.token}")) as again:
            await receive(again, "hello")
            await again.send_json({"type": "ping"})
            closing = await again.receive(timeout=10)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert again.close_code == 1008


async def test_a_call_holds_at_most_its_cap_of_messages(live_server: LiveServer) -> None:
    invited = consented_call(live_server, "pc1", "CAD/CF/2")
    _waiting(live_server, invited.call.public_id)
    with live_server.db.session() as session:
        call = states.get(session, invited.call.public_id)
        for n in range(PER_CALL - 1):
            states.add_chat(session, call, "caller", f"earlier {n}")
    async with (
        caller_http(live_server) as http,
        http.ws_connect(ws_url(live_server, f"/ws/v/{invited.token}")) as ws,
    ):
        await receive(ws, "hello")
        await ws.send_json({"type": "chat", "text": "the last one that fits"})
        assert (await receive(ws, "chat"))["text"] == "the last one that fits"
        await ws.send_json({"type": "chat", "text": "one too many"})
        assert (await receive(ws, "error"))["code"] == "chat_full"
    assert _stored(live_server, invited.call.public_id) == PER_CALL


async def test_the_console_renders_only_the_latest_page_of_chat(live_server: LiveServer) -> None:
    """25 messages: the console shows the latest 10 and links to the 10 before them, and
    that page to the first 5 (with no further link)."""
    invited = consented_call(live_server, "pc1", "CAD/CF/3")
    with live_server.db.session() as session:
        call = states.get(session, invited.call.public_id)
        for n in range(25):
            states.add_chat(session, call, "caller", f"message {n:02d}")
    with live_server.db.reader() as session:
        ids = list(session.exec(select(ChatMessage.id).where(ChatMessage.call_id == call.id)).all())
    handler = FormClient(live_server.base_url)
    try:
        await handler.sign_in("pc1", PASSWORD)
        path = f"/calls/{invited.call.public_id}"
        pages = []
        while True:
            response, body = await handler.get(path)
            assert response.status == 200
            pages.append(re.findall(r"message (\d\d)", body))
            link = re.search(r'href="\?chat_before=(\d+)#chat-heading"', body)
            if link is None:
                break
            path = f"/calls/{invited.call.public_id}?chat_before={link.group(1)}"
    finally:
        await handler.close()
    assert [len(p) for p in pages] == [10, 10, 5]
    assert pages[0] == [f"{n:02d}" for n in range(15, 25)]
    assert pages[2] == [f"{n:02d}" for n in range(5)]
    assert len(ids) == 25


async def test_a_signed_in_page_does_not_wait_on_a_chat_write(live_server: LiveServer) -> None:
    """Tried: while another thread holds SQLite's one write lock (as a flood's chat
    inserts do, one after another), a handler opens a page. The session look-up reads
    without the lock, so the page is answered at once rather than after the writer (or
    the busy timeout) with the whole event loop stalled behind it."""
    with live_server.db.session() as session:
        add_user(session, "pc1", Role.HANDLER)
    handler = FormClient(live_server.base_url)
    await handler.sign_in("pc1", PASSWORD)
    holding, release = threading.Event(), threading.Event()

    def hold_the_write_lock() -> None:
        with live_server.db.session() as session:
            session.exec(select(ChatMessage)).all()  # BEGIN IMMEDIATE already holds it
            holding.set()
            release.wait(30)

    writer = threading.Thread(target=hold_the_write_lock)
    writer.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        response, _ = await asyncio.wait_for(handler.get("/incidents"), 5)
        took = time.monotonic() - started
        assert response.status == 200
        assert writer.is_alive(), "the writer still held the lock when the page was answered"
        assert took < 2, f"the page waited {took:.1f} s on the writer"
    finally:
        release.set()
        writer.join()
        await handler.close()
