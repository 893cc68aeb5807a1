"""Reads do not lock: pages, queries and reports read in read-only sessions, and the
evaluation's statistics run outside any session, so a signalling write never waits
behind them."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy.exc import DBAPIError
from sqlmodel import select
from yarl import URL

from appliance.db import Database
from appliance.models import CallState, Role, User
from appliance.services.audit import Actor
from appliance.services.calls import invites, states
from appliance.services.calls.invites import Consent
from appliance.services.evaluation import measures
from appliance.services.identity import accounts
from appliance.web import keys
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_incident, add_user

DEVICE = "read-sessions-device"


def test_a_writer_commits_while_a_reader_is_open(db: Database) -> None:
    """Tried: a read-only session stays open in another thread (a report reading a
    quarter) while a writer commits; the writer does not wait for it."""
    reading, release = threading.Event(), threading.Event()

    def read() -> None:
        with db.reader() as session:
            session.exec(select(User)).all()
            reading.set()
            release.wait(30)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert reading.wait(10)
        with db.session() as session:
            accounts.create_user(session, Actor("t"), "pc1", "Pat", {Role.HANDLER})
        assert reader.is_alive(), "the reader was still open when the write committed"
    finally:
        release.set()
        reader.join()
    with db.reader() as session:
        assert accounts.get_by_username(session, "pc1") is not None


def test_a_write_in_a_read_only_session_fails_and_keeps_nothing(db: Database) -> None:
    with pytest.raises(DBAPIError), db.reader() as session:
        accounts.create_user(session, Actor("t"), "pc2", "Pat", {Role.HANDLER})
    with db.reader() as session:
        assert accounts.get_by_username(session, "pc2") is None


async def test_a_report_being_computed_does_not_delay_a_signalling_write(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried: the evaluation page is asked for and its statistics are held mid-way (as a
    busy quarter's would take seconds); meanwhile a caller chats on a live call."""
    computing, finish = threading.Event(), threading.Event()
    real = measures.evaluate

    def slow_evaluate(*args: object, **kwargs: object) -> measures.Evaluation:
        computing.set()
        finish.wait(30)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(measures, "evaluate", slow_evaluate)
    with live_server.db.session() as session:
        user = add_user(session, "sup1", Role.SUPERVISOR)
        officer = add_user(session, "pc1", Role.HANDLER)
        incident = add_incident(session, officer, "CAD/READ/1")
        _, call, token = invites.create_invite(
            session, Actor("pc1"), incident, officer, timedelta(hours=1)
        )
        device_hash = hashlib.sha256(DEVICE.encode()).hexdigest()
        invites.record_consent(session, call, Consent(True, False, False), device_hash, "")
        states.move(session, call, CallState.WAITING, Actor("caller"))
        assert user.id is not None
    supervisor = FormClient(live_server.base_url)
    await supervisor.sign_in("sup1", PASSWORD)
    jar = aiohttp.CookieJar(unsafe=True)
    jar.update_cookies({keys.CALLER_DEVICE_COOKIE: DEVICE}, response_url=URL(live_server.base_url))
    phone = aiohttp.ClientSession(cookie_jar=jar, connector=aiohttp.TCPConnector(ssl=False))
    try:
        page = asyncio.create_task(supervisor.get("/evaluation"))
        assert await asyncio.to_thread(computing.wait, 30), "the report never started"
        wss = live_server.base_url.replace("https://", "wss://")
        async with phone.ws_connect(f"{wss}/ws/v/{token}") as ws:
            await ws.send_json({"type": "chat", "text": "are you still there?"})
            while True:
                message = json.loads((await ws.receive(timeout=5)).data)
                assert message["type"] != "error", message
                if message["type"] == "chat":
                    break
        assert not page.done() and not finish.is_set(), "the report had finished first"
        with live_server.db.reader() as session:
            assert [
                m.body for m in states.chat_of(session, states.get(session, call.public_id))
            ] == ["are you still there?"]
        finish.set()
        response, body = await page
        assert response.status == 200 and "Evaluation" in body
    finally:
        finish.set()
        await phone.close()
        await supervisor.close()
