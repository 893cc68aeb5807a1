"""Events to the force's CAD: signed, retried with backoff, visible, and never lost."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import select

from appliance import migrate
from appliance.config import Settings, load_settings
from appliance.db import Database
from appliance.models import AuditEvent, CadDelivery, Role, utcnow
from appliance.notify.cad import CadSender
from appliance.services.outbox import cad
from appliance.tls import make_self_signed, server_context
from tests.support.cad_receiver import (
    SECRET,
    CadReceiver,
    running_receiver,
    settings_for,
    signature,
)
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_incident, add_user

OTHER = "a-different-secret-the-cad-was-given-xx"


async def until(check: Callable[[], Any], what: str, timeout: float = 10) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        result = check()
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def cad_receiver() -> AsyncIterator[CadReceiver]:
    async with running_receiver() as receiver:
        yield receiver


@pytest.fixture
def settings(tmp_path: Path, database_url: str, cad_receiver: CadReceiver) -> Settings:
    return settings_for(tmp_path, database_url, cad_receiver, cad_webhook_max_attempts=6)


@pytest.fixture
async def officer(live_server: LiveServer) -> AsyncIterator[tuple[FormClient, int]]:
    with live_server.db.session() as session:
        user = add_user(session, "pc9", Role.HANDLER, display_name="PC 9 Okafor")
        incident = add_incident(session, user, "CAD/WH/1")
    client = FormClient(live_server.base_url)
    await client.sign_in("pc9", PASSWORD)
    await client.get(f"/incidents/{incident.id}")
    try:
        yield client, incident.id or 0
    finally:
        await client.close()


def deliveries(server: LiveServer) -> list[CadDelivery]:
    return deliveries_in(server.db)


async def test_the_outcome_reaches_the_cad_signed_and_as_documented(
    live_server: LiveServer, officer: tuple[FormClient, int], cad_receiver: CadReceiver
) -> None:
    client, incident_id = officer
    response, _ = await client.post(
        f"/incidents/{incident_id}/outcome",
        {"code": "advice_given", "deployment_needed": "no", "close": "yes"},
    )
    assert response.status in (200, 303)
    await until(lambda: len(cad_receiver.events) == 2, "both events at the CAD")
    assert cad_receiver.violations == []
    outcome, closed = sorted(
        cad_receiver.events.values(), key=lambda e: e["event"] != "incident.outcome"
    )
    assert outcome["event"] == "incident.outcome" and closed["event"] == "incident.closed"
    assert outcome["incident"]["cadReference"] == "CAD/WH/1"
    assert outcome["data"]["outcome"] == {
        "code": "advice_given",
        "label": "Advice given",
        "deploymentNeeded": False,
        "by": "PC 9 Okafor",
    }
    assert closed["incident"]["status"] == "closed"
    # The CAD has each event before the sender has recorded its 2xx: wait for the records.
    await until(
        lambda: all(d.state == "delivered" for d in deliveries(live_server)),
        "both deliveries recorded",
        timeout=5,
    )
    rows = deliveries(live_server)
    assert [(d.event, d.state, d.attempts) for d in rows] == [
        ("incident.outcome", "delivered", 1),
        ("incident.closed", "delivered", 1),
    ]
    _, page = await client.get(f"/incidents/{incident_id}")
    assert "Sent to CAD" in page and "incident.outcome" in page and "delivered" in page


async def test_a_refused_signature_is_retried_re_signed_until_the_cad_takes_it(
    live_server: LiveServer, officer: tuple[FormClient, int], cad_receiver: CadReceiver
) -> None:
    """Tried: the CAD holds another secret, so to it every signature of ours looks forged
    (401), then the secret is put right. Also an attacker's request with a forged
    signature and a replay of a captured one. Nothing is lost and nothing forged is taken."""
    client, incident_id = officer
    cad_receiver.secret = OTHER.encode()
    await client.post(
        f"/incidents/{incident_id}/outcome", {"code": "referred", "deployment_needed": "no"}
    )
    await until(lambda: len(cad_receiver.attempts) >= 3, "three refused attempts")
    [pending] = deliveries(live_server)
    assert pending.state == "pending" and pending.last_status == 401 and pending.attempts >= 3
    assert not cad_receiver.events

    cad_receiver.secret = SECRET.encode()
    await until(lambda: cad_receiver.events, "the event taken once the secrets agree", timeout=15)
    # The CAD has the event before the sender has recorded its 2xx: wait for the record.
    await until(
        lambda: deliveries(live_server)[0].state == "delivered", "the delivery recorded", timeout=5
    )
    [delivered] = deliveries(live_server)
    assert delivered.state == "delivered"
    attempts = cad_receiver.attempts
    assert {a.body for a in attempts} == {delivered.body.encode()}  # the same bytes each time
    assert {a.event_id for a in attempts} == {delivered.event_id}
    for attempt in attempts:  # every attempt signed afresh over its own timestamp
        assert attempt.signature == signature(SECRET.encode(), attempt.timestamp, attempt.body)
    assert [a.status for a in attempts][-1] == 200 and all(a.status == 401 for a in attempts[:-1])

    # An attacker: the real body, a new timestamp, a signature made with a guessed key.
    taken = dict(cad_receiver.events)
    forged_body = json.dumps({**json.loads(delivered.body), "id": "0" * 36}).encode()
    async with aiohttp.ClientSession() as http:
        now = str(int(time.time()))
        forged = await http.post(
            cad_receiver.url,
            data=forged_body,
            headers={
                "Content-Type": "application/json",
                "X-EVR-Event-Id": "0" * 36,
                "X-EVR-Timestamp": now,
                "X-EVR-Signature": signature(b"guessed", now, forged_body),
            },
        )
        replayed = await http.post(
            cad_receiver.url,
            data=attempts[-1].body,
            headers={
                "Content-Type": "application/json",
                "X-EVR-Event-Id": attempts[-1].event_id,
                "X-EVR-Timestamp": str(int(attempts[-1].timestamp) - 600),
                "X-EVR-Signature": attempts[-1].signature,
            },
        )
    assert (forged.status, replayed.status) == (401, 401)
    assert cad_receiver.events == taken


async def test_a_refusal_for_good_fails_visibly_and_an_admin_sends_it_again(
    live_server: LiveServer, officer: tuple[FormClient, int], cad_receiver: CadReceiver
) -> None:
    """Tried: the CAD answers 422 (it will never take this as it is)."""
    client, incident_id = officer
    cad_receiver.mode = 422
    await client.post(
        f"/incidents/{incident_id}/outcome", {"code": "advice_given", "deployment_needed": "no"}
    )
    await until(lambda: deliveries(live_server)[0].state == "failed", "the delivery failed")
    [failed] = deliveries(live_server)
    assert failed.attempts == 1 and failed.last_status == 422
    with live_server.db.session() as session:
        audited = session.exec(
            select(AuditEvent).where(AuditEvent.action == "cad.delivery_failed")
        ).all()
        assert [e.object_id for e in audited] == [failed.event_id]
        add_user(session, "admin2", Role.ADMIN)

    admin = FormClient(live_server.base_url)
    try:
        await admin.sign_in("admin2", PASSWORD)
        _, page = await admin.get("/admin/cad?state=failed")
        assert failed.event_id in page and "HTTP 422" in page
        cad_receiver.mode = "ok"
        response, _ = await admin.post(f"/admin/cad/{failed.id}/resend", {})
        assert response.status in (200, 303)
    finally:
        await admin.close()
    await until(lambda: cad_receiver.events, "the event taken after sending again")
    assert list(cad_receiver.events) == [failed.event_id]
    assert deliveries(live_server)[0].state == "delivered"


async def test_no_cad_configured_queues_nothing(
    live_server: LiveServer, officer: tuple[FormClient, int]
) -> None:
    assert live_server.settings.cad_webhook_url is not None  # this module's server has one
    other = live_server.settings.model_copy(update={"cad_webhook_url": None})
    with live_server.db.session() as session:
        assert cad.queue_event(session, other, "incident.outcome", None, {}) is None
    assert deliveries(live_server) == []


async def test_a_cad_on_the_forces_own_pki_is_trusted_only_with_its_ca(
    tmp_path: Path, database_url: str, cad_receiver: CadReceiver
) -> None:
    """Tried: the CAD serves HTTPS with a certificate from a CA the system does not know;
    first without EVR_CAD_WEBHOOK_CA_FILE (refused, retried, shown), then with it."""
    cert, key = tmp_path / "cad.pem", tmp_path / "cad.key"
    make_self_signed(cert, key)
    await cad_receiver.stop()
    await cad_receiver.start(tls=server_context(cert, key))
    db = Database(database_url)
    migrate.upgrade(db.engine)
    try:
        with db.session() as session:
            user = add_user(session, "pc9", Role.HANDLER)
            incident = add_incident(session, user, "CAD/WH/TLS")
            base = load_settings(
                data_dir=tmp_path / "var",
                database_url=database_url,
                cad_webhook_url=cad_receiver.url,
                cad_webhook_secret=SECRET,
            )
            cad.queue_event(session, base, "incident.closed", incident.id, {"outcome": "x"})
        untrusting = CadSender.from_settings(base, db)
        trusting = CadSender.from_settings(
            base.model_copy(update={"cad_webhook_ca_file": cert}), db
        )
        assert untrusting is not None and trusting is not None
        try:
            assert await untrusting.run_once() == 1
            [waiting] = deliveries_in(db)
            assert waiting.state == "pending" and "not trusted" in waiting.last_error
            assert cad_receiver.events == {}
            with db.session() as session:  # the retry is due now
                row = session.get(CadDelivery, waiting.id)
                assert row is not None
                row.next_attempt_at = utcnow()
            assert await trusting.run_once() == 1
            assert [d.state for d in deliveries_in(db)] == ["delivered"]
            assert [e["event"] for e in cad_receiver.events.values()] == ["incident.closed"]
        finally:
            await untrusting.stop()
            await trusting.stop()
    finally:
        db.dispose()


def deliveries_in(db: Database) -> list[CadDelivery]:
    with db.session() as session:
        return list(session.exec(select(CadDelivery).order_by(CadDelivery.id)).all())
