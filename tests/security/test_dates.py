"""Item 18: dates from outside are bounded (appliance/dates.py), refused with their field.

The attacks: a CAD client (or whoever holds its key) sends ``received_at`` in year 9999,
which once broke the supervisors' board for good, or in year 1, which gave the API a 500;
a supervisor's link asks ``/evaluation`` for year 9999; an evidence officer's form sends a
review date in year 9999.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from appliance import dates
from appliance.models import Incident, Role, utcnow
from appliance.services.audit import Actor
from appliance.services.identity import api_keys
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_incident, add_user

pytestmark = pytest.mark.sqlite_only(
    reason="the bounds are checked before anything reaches the database; the engines "
    "store in-range dates alike (test_migrations and test_board cover both)"
)

BODY = {
    "grade": 3,
    "category": "Theft",
    "caller_name": "Jane Marple",
    "caller_phone": "07700 900123",
}


@pytest.fixture
async def cad(live_server: LiveServer) -> AsyncIterator[aiohttp.ClientSession]:
    with live_server.db.session() as session:
        _, key = api_keys.create(session, Actor("cli:root", "cli"), "cad")
    async with aiohttp.ClientSession(
        base_url=live_server.base_url,
        connector=aiohttp.TCPConnector(ssl=False),
        headers={"Authorization": f"Bearer {key}"},
    ) as session:
        yield session


@pytest.fixture
async def supervisor(live_server: LiveServer) -> AsyncIterator[FormClient]:
    with live_server.db.session() as session:
        add_user(session, "sgt1", Role.SUPERVISOR, Role.EVIDENCE_OFFICER)
    client = FormClient(live_server.base_url)
    await client.sign_in("sgt1", PASSWORD)
    try:
        yield client
    finally:
        await client.close()


async def test_received_at_out_of_range_is_a_400_naming_the_field(
    cad: aiohttp.ClientSession, supervisor: FormClient
) -> None:
    """Year 9999, year 1, and an hour ahead of our clock are each refused with 400 and
    ``field: received_at``; a call received a minute ago is created, and the board and the
    API's list still answer."""
    ahead = (utcnow() + dates.CLOCK_SKEW + timedelta(hours=1)).isoformat()
    for n, when in enumerate(("9999-12-31T23:00:00Z", "0001-01-01T00:00:00Z", ahead)):
        body = {**BODY, "cad_reference": f"CAD/BAD/{n}", "received_at": when}
        async with cad.post("/api/v1/incidents", json=body) as response:
            answer = await response.json()
            assert response.status == 400, (when, answer)
        assert answer["error"]["field"] == "received_at", answer
        assert "received_at" in answer["error"]["message"]

    fine = (utcnow() - timedelta(minutes=1)).isoformat()
    body = {**BODY, "cad_reference": "CAD/GOOD/1", "received_at": fine}
    async with cad.post("/api/v1/incidents", json=body) as response:
        assert response.status == 201, await response.text()
    async with cad.get("/api/v1/incidents") as response:
        listed = [i["cad_reference"] for i in (await response.json())["incidents"]]
    assert response.status == 200 and listed == ["CAD/GOOD/1"]
    response, page = await supervisor.get("/board")
    assert response.status == 200 and "CAD/GOOD/1" in page


async def test_the_board_survives_an_incident_stored_at_the_calendars_end(
    live_server: LiveServer, supervisor: FormClient
) -> None:
    """An incident written before the bounds existed (straight into the table) with a
    ``received_at`` in year 9999: the board still answers and lists it, last."""
    with live_server.db.session() as session:
        for ref, received in (
            ("CAD/OLD/9999", datetime(9999, 12, 31, 23, tzinfo=UTC)),
            ("CAD/OLD/NOW", utcnow()),
        ):
            session.add(
                Incident(
                    cad_reference=ref,
                    grade=3,
                    category="Theft",
                    caller_name="Jane Marple",
                    caller_phone="+447700900123",
                    received_at=received,
                    source="api:cad",
                )
            )
    response, page = await supervisor.get("/board")
    assert response.status == 200
    assert 0 < page.index("CAD/OLD/NOW") < page.index("CAD/OLD/9999")


async def test_an_evaluation_in_year_9999_is_a_400_naming_the_field(
    supervisor: FormClient,
) -> None:
    """``/evaluation?from=9999-01-01&to=9999-12-31`` answers 400 naming ``from`` and shows
    the report for the default period instead (the legitimate path, one render: the
    report's charts are the slow part)."""
    response, page = await supervisor.get("/evaluation?from=9999-01-01&to=9999-12-31")
    assert response.status == 400
    assert "from must lie between 2000-01-01 and 2099-12-31" in page
    today = utcnow().date()
    assert f'name="to" type="date" value="{today:%F}"' in page
    assert "Traceback" not in page


async def test_an_appointment_in_year_9999_is_refused_not_a_500(live_server: LiveServer) -> None:
    """A handler's booking form posted with ``starts_at`` at the calendar's end (slot
    arithmetic there overflows): refused as "choose a slot from the list", no
    appointment made, and the incident page still answers."""
    with live_server.db.session() as session:
        user = add_user(session, "pc1", Role.HANDLER)
        incident = add_incident(session, user, "CAD/APPT/9999")
        incident.eligibility, incident.eligibility_at = "eligible", utcnow()
        session.add(incident)
        incident_id = incident.id
    client = FormClient(live_server.base_url)
    try:
        await client.sign_in("pc1", PASSWORD)
        await client.get(f"/incidents/{incident_id}")
        form = {"starts_at": "9999-12-31T23:40:00+00:00", "safe_to_contact": "yes"}
        response, page = await client.post(f"/incidents/{incident_id}/appointments", form)
        assert response.status == 409 and "choose a slot from the list" in page
        response, page = await client.get(f"/incidents/{incident_id}")
        assert response.status == 200 and "Booked for" not in page
    finally:
        await client.close()
