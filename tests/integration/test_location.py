"""Location links over real HTTPS: a position in range is kept once and shown on the
incident; out of range or outside the force's box is refused and nothing kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from appliance.models import AuditEvent, Call, CallState, Incident, Role, SharedLocation, User
from appliance.services.audit import Actor
from appliance.services.calls import invites, life
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_incident, add_user


@pytest.fixture
def incident(live_server: LiveServer) -> tuple[Incident, User]:
    with live_server.db.session() as session:
        user = add_user(session, "pc1", Role.HANDLER)
        incident = add_incident(session, user, "CAD/LOC/1")
        return incident, user


def _link(server: LiveServer, incident: Incident, user: User, ttl_hours: float = 24) -> str:
    with server.db.session() as session:
        _, _, token = invites.create_invite(
            session, Actor("pc1"), incident, user, timedelta(hours=ttl_hours), kind=invites.LOCATION
        )
    return token


async def _agree(client: FormClient, token: str) -> None:
    response, body = await client.get(f"/v/{token}")
    assert response.status == 200 and "once, now" in body
    response, _ = await client.post(f"/v/{token}", {"consent": "yes"})
    assert response.headers["Location"] == f"/v/{token}/location"
    response, body = await client.get(f"/v/{token}/location")
    assert response.status == 200 and "js/caller/location.js" in body
    assert "geolocation=(self)" in response.headers["Permissions-Policy"]
    assert "camera=()" in response.headers["Permissions-Policy"]


def _share(client: FormClient, token: str, lat: str, lon: str, acc: str):
    return client.post(f"/v/{token}/location", {"latitude": lat, "longitude": lon, "accuracy": acc})


def _kept(server: LiveServer) -> list[SharedLocation]:
    with server.db.session() as session:
        return list(session.exec(select(SharedLocation)).all())


async def test_a_location_in_range_is_kept_once_and_shown_on_the_incident(
    live_server: LiveServer, incident, caller: FormClient
) -> None:
    incident, user = incident
    token = _link(live_server, incident, user)
    await _agree(caller, token)
    response, body = await _share(caller, token, "50.7155", "-2.4380", "12.5")
    assert response.status == 200 and "Your location has reached the officer" in body
    [kept] = _kept(live_server)
    assert (kept.latitude, kept.longitude, kept.accuracy_m) == (50.7155, -2.438, 12.5)
    with live_server.db.session() as session:
        call = session.exec(select(Call)).one()
        assert call.state == CallState.ENDED and call.end_reason == "location_shared"
        events = {e.action: e.detail for e in session.exec(select(AuditEvent))}
    assert "location.shared" in events and "50.7155" not in str(events)

    response, body = await _share(caller, token, "50.8", "-2.4", "5")  # once only
    assert response.status == 410 and len(_kept(live_server)) == 1

    staff = FormClient(live_server.base_url)
    try:
        await staff.sign_in("pc1", PASSWORD)
        _, body = await staff.get(f"/incidents/{incident.id}")
    finally:
        await staff.close()
    assert "50.715500, -2.438000" in body and "within 12 m" in body
    assert 'href="geo:50.715500,-2.438000"' in body


@pytest.mark.parametrize(
    ("lat", "lon", "acc", "message"),
    [
        ("91", "0", "10", "not on Earth"),
        ("51", "-181", "10", "not on Earth"),
        ("51.5", "-0.12", "20000", "within 10 km"),
        ("51.5", "-0.12", "-1", "within 10 km"),
        ("nan", "0", "10", "not a number"),
        ("", "", "", "did not send a position"),
        ("48.8566", "2.3522", "10", "outside the area we cover"),  # Paris
    ],
)
async def test_an_implausible_location_is_refused_and_nothing_kept(
    live_server: LiveServer, incident, caller: FormClient, lat, lon, acc, message
) -> None:
    incident, user = incident
    token = _link(live_server, incident, user)
    await _agree(caller, token)
    response, body = await _share(caller, token, lat, lon, acc)
    assert response.status == 400 and message in body
    assert _kept(live_server) == []
    with live_server.db.session() as session:
        assert session.exec(select(Call)).one().state == CallState.INVITED
        assert session.exec(
            select(AuditEvent).where(AuditEvent.action == "location.refused")
        ).first()


async def test_without_bounds_anywhere_on_earth_is_accepted(
    live_server: LiveServer, incident, caller: FormClient
) -> None:
    incident, user = incident
    live_server.settings.location_bounds = []
    token = _link(live_server, incident, user)
    await _agree(caller, token)
    response, _ = await _share(caller, token, "48.8566", "2.3522", "10")
    assert response.status == 200 and len(_kept(live_server)) == 1


async def test_location_links_refuse_a_second_phone_expiry_and_revocation(
    live_server: LiveServer, incident, caller: FormClient
) -> None:
    incident, user = incident
    token = _link(live_server, incident, user)
    await _agree(caller, token)
    other = FormClient(live_server.base_url)
    try:
        response, body = await other.get(f"/v/{token}")
        assert response.status == 409 and "another phone" in body
    finally:
        await other.close()
    with live_server.db.session() as session:
        life.revoke(session, live_server.settings, Actor("pc1"), session.exec(select(Call)).one())
    response, body = await _share(caller, token, "50.7", "-2.4", "10")
    assert response.status == 410 and _kept(live_server) == []
    expired = _link(live_server, incident, user, ttl_hours=-1)
    response, body = await caller.get(f"/v/{expired}")
    assert response.status == 410 and "expired" in body


async def test_declining_records_it_and_binds_nothing(
    live_server: LiveServer, incident, caller: FormClient
) -> None:
    incident, user = incident
    token = _link(live_server, incident, user)
    await caller.get(f"/v/{token}")
    response, body = await caller.post(f"/v/{token}", {})
    assert response.status == 400 and "tell the officer where you are" in body
    with live_server.db.session() as session:
        assert session.exec(select(Call)).one().caller_device_hash is None
