"""The caller's position during a call, through the real signalling socket: each fix
the box keeps reaches the handler with its National Grid reference, the console and the
incident page show it, and the track is in the export bundle. Fixes are throttled: once
unless the caller agreed to updates, then one per ``location_update_seconds``."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import timedelta

import aiohttp
import pytest
from sqlmodel import col, select

from appliance.models import AuditEvent, LocationFix, Role
from appliance.services.audit import Actor
from appliance.services.calls import invites, states
from appliance.services.calls.invites import Consent
from tests.support.hostile import caller_http, consented_call, receive, ws_url
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_incident, add_user

pytestmark = pytest.mark.sqlite_only(
    reason="the socket, the OSTN15 conversion and the pages are under test; the fixes are "
    "plain inserts the migration test already runs on both engines"
)

# OSTN15 developer pack test points (ETRS89 in, OSGB36 out): see tests/unit/test_grid.py.
TP09_LONDON = (51.48936565, -0.119925572, 530624.974, 178388.464, "TQ 30624 78388")
TP27_EDINBURGH = (55.92478266, -3.294792193, 319188.434, 670947.534, "NT 19188 70947")
TP39_SHETLAND = (59.85409914, -1.274869104, 440725.073, 1107878.448, "HU 40725 07878")


def _backdate_fixes(server: LiveServer, seconds: float) -> None:
    """As if the last fix came ``seconds`` earlier: the throttle's clock, without a wait."""
    with server.db.session() as session:
        for fix in session.exec(select(LocationFix)).all():
            fix.fixed_at -= timedelta(seconds=seconds)
            session.add(fix)


async def _send(ws: aiohttp.ClientWebSocketResponse, lat: float, lon: float) -> None:
    await ws.send_json({"type": "location", "latitude": lat, "longitude": lon, "accuracy": 8})


async def test_fixes_at_os_test_points_reach_the_handler_console_incident_and_export(
    live_server: LiveServer,
) -> None:
    with live_server.db.session() as session:
        add_user(session, "do1", Role.EVIDENCE_OFFICER)
    invited = consented_call(
        live_server, "pc1", "CAD/LOC/T1", choice=Consent(True, False, True, location_updates=True)
    )
    every = live_server.settings.location_update_seconds
    handler = FormClient(live_server.base_url)
    await handler.sign_in("pc1", PASSWORD)
    console_ws = f"/ws/calls/{invited.call.public_id}"
    try:
        async with (
            caller_http(live_server) as phone,
            phone.ws_connect(ws_url(live_server, f"/ws/v/{invited.token}")) as caller_ws,
            handler.session.ws_connect(ws_url(live_server, console_ws)) as handler_ws,
        ):
            await receive(caller_ws, "hello")
            await receive(handler_ws, "hello")
            for lat, lon, easting, northing, written in (TP09_LONDON, TP27_EDINBURGH):
                await _send(caller_ws, lat, lon)
                fix = await receive(handler_ws, "location")
                assert round(fix["easting"]) == round(easting), fix
                assert round(fix["northing"]) == round(northing), fix
                assert fix["gridReference"] == written
                # Sent again at once: dropped (the page sends no faster than `every`);
                # the pong says the box has dealt with it.
                await _send(caller_ws, 60.0, -1.0)
                await caller_ws.send_json({"type": "ping"})
                await receive(caller_ws, "pong")
                _backdate_fixes(live_server, every)
            # The last of the ones sent too soon never reached the handler: the next
            # message the handler gets is the next fix kept.
            lat, lon, easting, northing, written = TP39_SHETLAND
            await _send(caller_ws, lat, lon)
            fix = await receive(handler_ws, "location")
            assert fix["gridReference"] == written and round(fix["northing"]) == round(northing)

        _, page = await handler.get(f"/calls/{invited.call.public_id}")
        assert '<span id="shared-grid">HU 40725 07878</span>' in page
        assert "(E 440725, N 1107878)" in page
        _, incident_page = await handler.get(f"/incidents/{invited.call.incident_id}")
        for *_, written in (TP09_LONDON, TP27_EDINBURGH, TP39_SHETLAND):
            assert f'<span class="grid-ref">{written}</span>' in incident_page
    finally:
        await handler.close()

    with live_server.db.session() as session:
        fixes = session.exec(select(LocationFix).order_by(col(LocationFix.id))).all()
        assert [round(f.easting or 0) for f in fixes] == [530625, 319188, 440725]

    officer = FormClient(live_server.base_url)
    try:
        await officer.sign_in("do1", PASSWORD)
        url = f"{live_server.base_url}/incidents/{invited.call.incident_id}/export"
        async with officer.session.get(url) as response:
            assert response.status == 200
            bundle = zipfile.ZipFile(io.BytesIO(await response.read()))
    finally:
        await officer.close()
    rows = list(csv.DictReader(io.StringIO(bundle.read("locations.csv").decode())))
    assert [r["grid_reference"] for r in rows] == [
        "TQ 30624 78388",
        "NT 19188 70947",
        "HU 40725 07878",
    ]
    assert [r["source"] for r in rows] == ["call"] * 3
    assert float(rows[0]["easting"]) == pytest.approx(530624.974, abs=0.5)
    assert "locations.csv" in bundle.read("SHA256SUMS").decode()


async def test_a_caller_who_shared_once_has_only_the_first_fix_kept(
    live_server: LiveServer,
) -> None:
    invited = consented_call(live_server, "pc1", "CAD/LOC/T2", choice=Consent(True, False, True))
    async with (
        caller_http(live_server) as phone,
        phone.ws_connect(ws_url(live_server, f"/ws/v/{invited.token}")) as caller_ws,
    ):
        await receive(caller_ws, "hello")
        await _send(caller_ws, TP09_LONDON[0], TP09_LONDON[1])
        # Even long after: once means once.
        await caller_ws.send_json({"type": "ping"})
        await receive(caller_ws, "pong")
        _backdate_fixes(live_server, 3600)
        await _send(caller_ws, TP27_EDINBURGH[0], TP27_EDINBURGH[1])
        await caller_ws.send_json({"type": "ping"})
        await receive(caller_ws, "pong")
        # Outside the force's area: refused, and the phone is told why.
        await _send(caller_ws, 40.7, -74.0)
        refused = await receive(caller_ws, "error")
        assert refused["code"] == "location_refused"
    with live_server.db.session() as session:
        fixes = session.exec(select(LocationFix)).all()
        assert [f.northing is not None and round(f.northing) for f in fixes] == [178388]


async def test_without_consent_no_fix_is_kept(live_server: LiveServer) -> None:
    invited = consented_call(live_server, "pc1", "CAD/LOC/T3")
    async with (
        caller_http(live_server) as phone,
        phone.ws_connect(ws_url(live_server, f"/ws/v/{invited.token}")) as caller_ws,
    ):
        await receive(caller_ws, "hello")
        await _send(caller_ws, TP09_LONDON[0], TP09_LONDON[1])
        reply = await receive(caller_ws, "error")
        assert reply["code"] == "not_allowed" and "location" in reply["message"]
    with live_server.db.session() as session:
        assert session.exec(select(LocationFix)).all() == []


@pytest.mark.parametrize(
    ("answer", "shared", "updates", "page_says"),
    [("yes", True, False, "yes"), ("live", True, True, "live"), ("no", False, False, "no")],
)
async def test_the_consent_page_asks_once_or_kept_up_to_date(
    live_server: LiveServer,
    caller: FormClient,
    answer: str,
    shared: bool,
    updates: bool,
    page_says: str,
) -> None:
    """Each answer to "Can we see where you are during the call?" is recorded as given,
    and the call page tells the phone whether to share once or to watch, and how often."""
    with live_server.db.session() as session:
        user = add_user(session, "pc1", Role.HANDLER)
        incident = add_incident(session, user, "CAD/LOC/CONSENT")
        _, call, token = invites.create_invite(
            session, Actor("pc1"), incident, user, timedelta(hours=1)
        )
    _, page = await caller.get(f"/v/{token}")
    assert 'id="consent_location-live"' in page
    response, _ = await caller.post(
        f"/v/{token}", {"consent_video": "yes", "consent_location": answer}
    )
    assert response.status == 303
    with live_server.db.session() as session:
        kept = states.by_public_id(session, call.public_id)
        assert (kept.consent_location, kept.consent_location_updates) == (shared, updates)
        consent = session.exec(select(AuditEvent).where(AuditEvent.action == "call.consent")).one()
        assert consent.detail["location_updates"] is updates
    _, page = await caller.get(f"/v/{token}/call")
    every = live_server.settings.location_update_seconds
    assert f'data-location="{page_says}" data-location-every="{every}"' in page
