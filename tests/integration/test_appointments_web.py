"""Appointments from the incident page over real HTTPS: book, refuse, move, cancel; the
caller's link before its slot."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import func, select

from appliance.models import Appointment, Call, Incident, Invite, OutboundMessage, Role
from appliance.services.audit import Actor
from appliance.services.intake import appointments, incidents
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_incident, add_user

SLOT_RE = re.compile(r'<option value="([^"]+)">([^<]+) \((\d) free\)</option>')


@pytest.fixture
async def handler(live_server: LiveServer) -> AsyncIterator[FormClient]:
    with live_server.db.session() as session:
        user = add_user(session, "pc1", Role.HANDLER)
        incident = add_incident(session, user, "CAD/WEB/1")
        incidents.set_eligibility(session, Actor("pc1"), user, incident, ["ok?"], [True])
    client = FormClient(live_server.base_url)
    await client.sign_in("pc1", PASSWORD)
    try:
        yield client
    finally:
        await client.close()


def _incident_id(server: LiveServer) -> int:
    with server.db.session() as session:
        incident = session.exec(select(Incident)).one()
        return incident.id or 0


def _rows(server: LiveServer) -> dict[str, int]:
    with server.db.session() as session:
        return {
            model.__name__: session.exec(select(func.count()).select_from(model)).one()
            for model in (Appointment, Invite, Call, OutboundMessage)
        }


async def test_book_refuse_move_cancel_from_the_incident_page(
    live_server: LiveServer, handler: FormClient
) -> None:
    incident_id = _incident_id(live_server)
    page = f"/incidents/{incident_id}"
    response, body = await handler.get(page)
    assert response.status == 200 and "Video appointment" in body
    offered = SLOT_RE.findall(body)
    assert offered and all(free == "2" for _, _, free in offered)
    # The list is in UK time: each label is the London wall clock of its UTC value.
    for value, label, _ in offered:
        assert html.unescape(label) == appointments.london_label(datetime.fromisoformat(value))
    later = [
        v
        for v, _, _ in offered
        if datetime.fromisoformat(v) - datetime.now(UTC) > timedelta(minutes=20)
    ]
    first, second = later[0], later[1]

    # Refusals: no confirmation, a time off the slot grid, outside the hours. Nothing written.
    response, body = await handler.post(f"{page}/appointments", {"starts_at": first})
    assert response.status == 409 and "Not booked: confirm that it is safe to contact" in body
    off_grid = (datetime.fromisoformat(first) + timedelta(minutes=7)).isoformat()
    response, body = await handler.post(
        f"{page}/appointments", {"starts_at": off_grid, "safe_to_contact": "yes"}
    )
    assert response.status == 409 and "is not the start of a slot" in body
    response, body = await handler.post(
        f"{page}/appointments", {"starts_at": "tomorrow at ten", "safe_to_contact": "yes"}
    )
    assert response.status == 409 and "choose a slot from the list" in body
    assert set(_rows(live_server).values()) == {0}

    response, _ = await handler.post(
        f"{page}/appointments", {"starts_at": first, "safe_to_contact": "yes"}
    )
    assert response.status == 303 and response.headers["Location"].endswith(
        "notice=appointment_book"
    )
    response, body = await handler.get(response.headers["Location"])
    label = appointments.london_label(datetime.fromisoformat(first))
    assert "Booked. The caller gets an SMS" in body
    assert "Booked for <strong" in body and html.escape(label) in body
    with live_server.db.session() as session:
        booked = session.exec(select(Appointment)).one()
        link = session.exec(select(OutboundMessage).order_by(OutboundMessage.id)).first()
    assert link is not None and label in link.body

    # The caller's link before its slot: a plain page that says from when, in UK time.
    caller = FormClient(live_server.base_url)
    try:
        path = "/v/" + link.body.rsplit("/v/", 1)[1]
        response, body = await caller.get(path)
        opens = appointments.london_label(booked.starts_at - timedelta(minutes=15))
        assert response.status == 409 and "has not started yet" in body
        assert f"This link works from {html.escape(opens)} (UK time)" in body
    finally:
        await caller.close()

    # Move, then cancel.
    response, _ = await handler.post(
        f"{page}/appointments/{booked.id}/move", {"starts_at": second, "safe_to_contact": "yes"}
    )
    assert response.status == 303
    response, body = await handler.get(page)
    assert html.escape(appointments.london_label(datetime.fromisoformat(second))) in body
    response, _ = await handler.post(
        f"{page}/appointments/{booked.id}/cancel", {"safe_to_contact": "yes"}
    )
    assert response.status == 303
    response, body = await handler.get(page)
    assert "Book video appointment" in body and ": cancelled</li>" in body
    response, _ = await handler.post(
        f"{page}/appointments/{booked.id}/cancel", {"safe_to_contact": "yes"}
    )
    assert response.status == 409
    response, _ = await handler.post(f"{page}/appointments/999/cancel", {"safe_to_contact": "yes"})
    assert response.status == 404
    with live_server.db.session() as session:
        bodies = [m.body for m in session.exec(select(OutboundMessage)).all()]
    assert sum("is cancelled" in b for b in bodies) == 1
