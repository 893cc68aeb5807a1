"""Audit floods (issue 16, item 5): bad API keys from one address cost one chained row
a minute, not one each, and past the allowance a 429 with no database look-up; the
chain holds and the refusals are still counted."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from sqlmodel import select

from appliance.config import Settings
from appliance.models import AuditEvent
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.identity import api_keys
from appliance.web import keys
from tests.support.live import LiveServer

ALLOWED = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"refusals_per_source": ALLOWED})


async def test_bad_api_keys_are_tallied_then_throttled(live_server: LiveServer) -> None:
    """Sixteen clients send forged keys: 3 refusals (401), then 429 with Retry-After; the
    audit trail gets one `api.refused`, one `api.throttled` and, once the minute closes,
    a `refusals.repeated` row for each counting the rest. The chain verifies."""
    async with aiohttp.ClientSession(
        base_url=live_server.base_url, connector=aiohttp.TCPConnector(ssl=False)
    ) as client:

        async def forged(n: int) -> int:
            headers = {"Authorization": f"Bearer evr_forged-{n:04d}-key"}
            async with client.get("/api/v1/incidents", headers=headers) as response:
                if response.status == 429:
                    assert int(response.headers["Retry-After"]) > 0
                    assert (await response.json())["error"]["code"] == "too_many_requests"
                return response.status

        first = [await forged(n) for n in range(ALLOWED)]
        flood = await asyncio.gather(*(forged(n) for n in range(ALLOWED, ALLOWED + 16)))
    assert first == [401] * ALLOWED
    assert flood == [429] * 16
    with live_server.db.session() as session:
        live_server.app[keys.GUARDS].tally.flush(session, everything=True)
    with live_server.db.reader() as session:
        rows = session.exec(select(AuditEvent).order_by(AuditEvent.seq)).all()
        refusals = [r for r in rows if r.source == "127.0.0.1"]
        assert [r.action for r in refusals].count("api.refused") == 1
        assert [r.action for r in refusals].count("api.throttled") == 1
        counted = {
            r.detail["action"]: r.detail["count"] for r in rows if r.action == audit.REPEATED
        }
        assert counted == {"api.refused": ALLOWED - 1, "api.throttled": 15}
        assert audit.verify(session).ok


async def test_a_live_key_from_another_address_is_served_during_a_flood(
    live_server: LiveServer,
) -> None:
    """The throttle is per address: the CAD's own key still works while another address
    is throttled (here the flooding address is marked as throttled directly)."""
    with live_server.db.session() as session:
        _, key = api_keys.create(session, Actor("cli:root", "cli"), "cad")
    guards = live_server.app[keys.GUARDS]
    for _ in range(ALLOWED):
        guards.refusals.hit("203.0.113.9")
    assert guards.refusals.blocked("203.0.113.9")
    async with aiohttp.ClientSession(
        base_url=live_server.base_url, connector=aiohttp.TCPConnector(ssl=False)
    ) as client:
        headers = {"Authorization": f"Bearer {key}"}
        async with client.get("/api/v1/incidents", headers=headers) as response:
            assert response.status == 200


def test_the_tally_writes_a_closed_window_with_the_next_refusal(live_server: LiveServer) -> None:
    """A minute's count is written when the next refusal comes after it (or by the
    app's flusher), with the names tried: no refusal is lost, none is a row of its own."""
    now = [0.0]
    tally = audit.RefusalTally(window_s=60, clock=lambda: now[0])
    actor = Actor("api", "192.0.2.44")
    with live_server.db.session() as session:
        for n in range(5):
            tally.record(session, actor, "api.refused", object_id=f"evr_k{n}")
        now[0] = 61.0
        tally.record(session, actor, "api.refused", object_id="evr_late")
    with live_server.db.reader() as session:
        rows = session.exec(
            select(AuditEvent).where(AuditEvent.source == "192.0.2.44").order_by(AuditEvent.seq)
        ).all()
    assert [r.action for r in rows] == ["api.refused", audit.REPEATED, "api.refused"]
    assert rows[1].detail["count"] == 4
    assert rows[1].detail["examples"] == ["evr_k1", "evr_k2", "evr_k3", "evr_k4"]
    assert rows[2].object_id == "evr_late"
