"""Intake in the web app: take an incident from CAD, eligibility, invites by SMS (outbox)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from appliance.models import AuditEvent, Call, Incident, OutboundMessage, Role
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_incident, add_user

YES = "yes"


@pytest.fixture
async def handler(live_server: LiveServer) -> AsyncIterator[FormClient]:
    with live_server.db.session() as session:
        add_user(session, "pc1", Role.HANDLER)
        add_incident(session, None, "CAD/IN/1", source="api:cad")
    client = FormClient(live_server.base_url)
    await client.sign_in("pc1", PASSWORD)
    try:
        yield client
    finally:
        await client.close()


def _incident(server: LiveServer) -> Incident:
    with server.db.session() as session:
        return session.exec(select(Incident).where(Incident.cad_reference == "CAD/IN/1")).one()


async def _answer(client: FormClient, incident_id: int, answers: list[str], reason: str = ""):
    await client.get(f"/incidents/{incident_id}")
    fields = [(f"q{n}", a) for n, a in enumerate(answers)] + [("reason", reason)]
    return await client.post(f"/incidents/{incident_id}/eligibility", fields)


async def test_an_incident_from_cad_is_taken_checked_and_invited_by_sms(
    live_server: LiveServer, handler: FormClient
) -> None:
    incident = _incident(live_server)
    response, body = await handler.get("/incidents?unowned=1")
    assert "CAD/IN/1" in body and "not taken" in body
    # Before taking it: the handler sees it but cannot answer for it.
    response, _ = await _answer(handler, incident.id, [YES] * 5)
    assert response.status == 403
    await handler.get(f"/incidents/{incident.id}")
    response, _ = await handler.post(f"/incidents/{incident.id}/take")
    assert response.status == 303

    # An invite before eligibility is refused.
    await handler.get(f"/incidents/{incident.id}")
    response, body = await handler.post(f"/incidents/{incident.id}/invites", {"channel": "link"})
    assert response.status == 409 and "eligibility checklist first" in body

    response, _ = await _answer(handler, incident.id, [YES] * 5)
    assert response.status == 303
    assert _incident(live_server).eligibility == "eligible"

    # SMS needs the handler to confirm it is safe to contact the caller now.
    await handler.get(f"/incidents/{incident.id}")
    response, body = await handler.post(f"/incidents/{incident.id}/invites", {"channel": "sms"})
    assert response.status == 400 and "safe to contact" in body
    with live_server.db.session() as session:
        assert session.exec(select(OutboundMessage)).all() == []
        assert session.exec(select(Call)).all() == []

    response, _ = await handler.post(
        f"/incidents/{incident.id}/invites", {"channel": "sms", "safe_to_contact": YES}
    )
    assert response.status == 303
    for _ in range(50):  # the dispatcher was poked: the outbox stores it at once
        with live_server.db.session() as session:
            message = session.exec(select(OutboundMessage)).one()
        if message.status == "stored":
            break
        await asyncio.sleep(0.1)
    assert message.status == "stored" and message.to_phone == "+447700900123"
    link = re.search(r"https://\S+/v/[A-Za-z0-9_-]{43}", message.body).group(0)
    response, body = await handler.get(f"/incidents/{incident.id}")
    assert "sms-stored" in body and "incident.eligibility" in body and "invite.created" in body

    caller = FormClient(live_server.base_url)
    try:
        response, body = await caller.get(link.replace("https://evr.test", ""))
        assert response.status == 200 and "I agree to a video call" in body
    finally:
        await caller.close()


async def test_an_ineligible_incident_records_why_and_leaves_the_video_path(
    live_server: LiveServer, handler: FormClient
) -> None:
    incident = _incident(live_server)
    await handler.get(f"/incidents/{incident.id}")
    await handler.post(f"/incidents/{incident.id}/take")
    response, body = await _answer(handler, incident.id, [YES, YES, "no", YES])
    assert response.status == 400 and "answer every question" in body
    response, _ = await _answer(handler, incident.id, [YES, YES, "no", YES, YES])
    assert response.status == 303
    stored = _incident(live_server)
    assert stored.eligibility == "ineligible"
    assert stored.eligibility_reason == "The offender is not present"
    response, body = await handler.get(f"/incidents/{incident.id}")
    assert "Not eligible for a video response" in body and "Send link by SMS" not in body
    response, _ = await handler.post(
        f"/incidents/{incident.id}/invites", {"channel": "sms", "safe_to_contact": YES}
    )
    assert response.status == 409
    with live_server.db.session() as session:
        event = session.exec(
            select(AuditEvent).where(AuditEvent.action == "incident.eligibility")
        ).one()
        assert event.detail == {"eligible": False, "failed": 1}
