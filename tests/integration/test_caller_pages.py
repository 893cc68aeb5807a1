"""The caller's pages on GOV.UK patterns, over HTTP: consent as questions with explicit
answers and an error summary linked to its field, the officer and the reference shown,
the call's status for a camera check that has no socket yet, and "Exit this page" only
where being seen on the call could harm the caller."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlmodel import select

from appliance.models import AuditEvent, Call, Role
from appliance.services.audit import Actor
from appliance.services.calls import invites, life, states
from appliance.services.identity import accounts
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import add_incident, add_user

pytestmark = pytest.mark.sqlite_only(reason="templates and one read, not the database")


def _link(live_server: LiveServer, reference: str) -> str:
    with live_server.db.session() as session:
        user = add_user(session, "pc1", Role.HANDLER)
        incident = add_incident(session, user, reference)
        _, _, token = invites.create_invite(
            session, Actor("pc1"), incident, user, timedelta(hours=1)
        )
    return token


async def test_consent_asks_with_explicit_answers_and_links_its_error(
    live_server: LiveServer, caller: FormClient
) -> None:
    """The page names the officer and the reference and asks three questions as radios,
    the optional two with "No – you can still have the call"; sent unanswered, it comes
    back 400 with an error summary linking to the first answer, and nothing is recorded
    as declined."""
    token = _link(live_server, "CAD/GOV/1")
    response, page = await caller.get(f"/v/{token}")
    assert response.status == 200
    assert 'id="who-reference">CAD/GOV/1<' in page and 'id="who-officer">Pat<' in page
    assert "Can we record the call?" in page
    assert page.count("No – you can still have the call") == 2
    # Video yes/no, recording yes/no, location once/kept up to date/no.
    assert page.count('type="radio"') == 7 and 'type="checkbox"' not in page
    assert "Stay on your phone call until the officer tells you to hang up" in page
    assert 'id="quick-exit"' not in page

    response, page = await caller.post(f"/v/{token}", {})
    assert response.status == 400
    assert 'class="error-summary"' in page
    assert '<a href="#consent_video-yes">Select yes if you agree to a video call</a>' in page
    assert 'id="consent_video-yes"' in page and 'aria-describedby="consent_video-error"' in page
    with live_server.db.session() as session:
        declined = session.exec(
            select(AuditEvent).where(AuditEvent.action == "call.consent_declined")
        ).all()
        assert declined == []

    response, _ = await caller.post(
        f"/v/{token}", {"consent_video": "yes", "consent_recording": "no"}
    )
    assert response.status == 303
    with live_server.db.session() as session:
        call = session.exec(select(Call)).one()
        assert call.consent_video and not call.consent_recording and not call.consent_location


async def test_the_status_says_whether_the_call_is_live_to_the_phone_that_agreed(
    live_server: LiveServer, caller: FormClient
) -> None:
    """Live after consent, not live once revoked (and no rejoin: the caller did not end
    it); another phone learns nothing (404)."""
    token = _link(live_server, "CAD/GOV/2")
    await caller.get(f"/v/{token}")
    await caller.post(f"/v/{token}", {"consent_video": "yes"})
    response, body = await caller.get(f"/v/{token}/status")
    assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
    assert json.loads(body) == {"live": True, "rejoinSeconds": 0}

    other = FormClient(live_server.base_url)
    try:
        response, _ = await other.get(f"/v/{token}/status")
        assert response.status == 404
    finally:
        await other.close()

    with live_server.db.session() as session:
        call = session.exec(select(Call)).one()
        life.revoke(session, live_server.settings, Actor("pc1"), call)
    response, body = await caller.get(f"/v/{token}/status")
    assert response.status == 200 and json.loads(body) == {"live": False, "rejoinSeconds": 0}


async def test_exit_this_page_shows_only_where_being_seen_could_harm_the_caller(
    live_server: LiveServer, caller: FormClient
) -> None:
    """Every page of an ordinary (burglary-like) video link, through the call and after
    it, carries no "Exit this page" (a mistap would only end the call); a link we cannot
    place carries it, since it may be an RVR link mistyped (test_rvr.py walks the RVR
    pages, which all carry it)."""
    token = _link(live_server, "CAD/GOV/3")
    pages = [await caller.get(f"/v/{token}")]
    await caller.post(f"/v/{token}", {"consent_video": "yes"})
    pages.append(await caller.get(f"/v/{token}/call"))
    with live_server.db.session() as session:
        call = session.exec(select(Call)).one()
        states.caller_waiting(session, call, "")
        life.admit(session, live_server.settings, call, accounts.require(session, "pc1"), "")
        life.end(session, live_server.settings, call, Actor("caller", ""), life.CALLER_ENDED)
    pages.append(await caller.get(f"/v/{token}"))  # ended, with "Rejoin the call"
    pages.append(await caller.get(f"/v/{token}/survey"))
    pages.append(await caller.get("/privacy"))
    assert [response.status for response, _ in pages] == [200, 200, 410, 200, 200]
    assert "Rejoin the call" in pages[2][1]
    for response, page in pages:
        assert "Exit this page" not in page and 'id="quick-exit"' not in page, response.url

    response, page = await caller.get("/v/" + "x" * 43)
    assert response.status == 404 and 'id="quick-exit"' in page
