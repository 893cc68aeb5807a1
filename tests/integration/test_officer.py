"""The officer's record: THRIVE versions, notes and safeguarding, outcome; closing needs one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from appliance.models import AuditEvent, Incident, IncidentNote, Role, ThriveAssessment
from appliance.services.audit import Actor
from appliance.services.intake import incidents
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_user

RATINGS = {
    "threat": "low",
    "harm": "medium",
    "risk": "low",
    "investigation": "high",
    "vulnerability": "medium",
    "engagement": "low",
}


@pytest.fixture
async def officer(live_server: LiveServer) -> AsyncIterator[tuple[FormClient, int]]:
    with live_server.db.session() as session:
        user = add_user(session, "pc1", Role.HANDLER)
        incident = incidents.create(
            session,
            Actor("pc1"),
            user,
            cad_reference="CAD/OF/1",
            grade=3,
            category="Theft",
            caller_name="Jane Marple",
            caller_phone="07700900123",
        )
    client = FormClient(live_server.base_url)
    await client.sign_in("pc1", PASSWORD)
    await client.get(f"/incidents/{incident.id}")
    try:
        yield client, incident.id
    finally:
        await client.close()


def _incident(server: LiveServer, incident_id: int) -> Incident:
    with server.db.session() as session:
        return session.get(Incident, incident_id)


async def test_thrive_is_versioned_and_never_edited(
    live_server: LiveServer, officer: tuple[FormClient, int]
) -> None:
    client, incident_id = officer
    response, body = await client.post(
        f"/incidents/{incident_id}/thrive", {**RATINGS, "harm": "", "risk_note": "dog in garden"}
    )
    assert response.status == 400 and "harm" in body
    response, _ = await client.post(
        f"/incidents/{incident_id}/thrive", {**RATINGS, "risk_note": "dog in garden"}
    )
    assert response.status == 303
    # From the console the same form goes by fetch and comes back as JSON.
    response, body = await client.post(
        f"/incidents/{incident_id}/thrive",
        {**RATINGS, "threat": "high"},
        headers={"X-Requested-With": "fetch"},
    )
    assert response.status == 200 and "version 2" in body
    with live_server.db.session() as session:
        versions = session.exec(select(ThriveAssessment).order_by(ThriveAssessment.version)).all()
        assert [v.version for v in versions] == [1, 2]
        assert versions[0].ratings["threat"] == "low" and versions[1].ratings["threat"] == "high"
        assert versions[0].notes["risk"] == "dog in garden"
        actions = [e.action for e in session.exec(select(AuditEvent))]
        assert actions.count("incident.thrive") == 2
    response, body = await client.get(f"/incidents/{incident_id}")
    assert "2 versions" in body


async def test_notes_and_safeguarding_referrals(
    live_server: LiveServer, officer: tuple[FormClient, int]
) -> None:
    client, incident_id = officer
    response, _ = await client.post(
        f"/incidents/{incident_id}/notes", {"text": "Caller showed the broken lock", "kind": "note"}
    )
    assert response.status == 303
    response, body = await client.post(
        f"/incidents/{incident_id}/notes", {"text": "Child at the address", "kind": "safeguarding"}
    )
    assert response.status == 400 and "who the safeguarding referral goes to" in body
    response, _ = await client.post(
        f"/incidents/{incident_id}/notes",
        {"text": "Child at the address", "kind": "safeguarding", "referred_to": "Social care"},
    )
    assert response.status == 303
    with live_server.db.session() as session:
        notes = session.exec(select(IncidentNote).order_by(IncidentNote.id)).all()
        assert [(n.kind, n.referred_to) for n in notes] == [
            ("note", ""),
            ("safeguarding", "Social care"),
        ]
        audit_text = " ".join(str(e.detail) for e in session.exec(select(AuditEvent)))
        assert "Child at the address" not in audit_text
    response, body = await client.get(f"/incidents/{incident_id}")
    assert "safeguarding → Social care" in body and "broken lock" in body


async def test_closing_needs_an_outcome_and_deployments_are_recorded(
    live_server: LiveServer, officer: tuple[FormClient, int]
) -> None:
    client, incident_id = officer
    response, body = await client.post(f"/incidents/{incident_id}/close")
    assert response.status == 400 and "set the outcome before closing" in body
    assert _incident(live_server, incident_id).status == "open"
    response, body = await client.post(
        f"/incidents/{incident_id}/outcome", {"code": "advice_given"}
    )
    assert response.status == 400 and "had to be sent" in body
    response, body = await client.post(
        f"/incidents/{incident_id}/outcome", {"code": "tea_and_biscuits", "deployment_needed": "no"}
    )
    assert response.status == 400
    response, _ = await client.post(
        f"/incidents/{incident_id}/outcome",
        {"code": "officer_to_attend", "deployment_needed": "no"},
    )
    assert response.status == 303
    stored = _incident(live_server, incident_id)
    assert stored.outcome_code == "officer_to_attend" and stored.deployment_needed is True
    response, _ = await client.post(
        f"/incidents/{incident_id}/outcome",
        {"code": "resolved_on_call", "deployment_needed": "no", "close": "yes"},
    )
    assert response.status == 303
    stored = _incident(live_server, incident_id)
    assert (stored.outcome_code, stored.deployment_needed, stored.status) == (
        "resolved_on_call",
        False,
        "closed",
    )
    with live_server.db.session() as session:
        actions = [e.action for e in session.exec(select(AuditEvent))]
        assert actions.count("incident.outcome") == 2 and "incident.closed" in actions
    response, body = await client.get(f"/incidents/{incident_id}")
    assert "no deployment needed" in body and "Save outcome" not in body
