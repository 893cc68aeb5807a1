"""The caller survey over real HTTPS: on the call page after the call, by the SMS link later,
for the control arm after the visit; and the supervisors' evaluation and trial pages."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from appliance import dates
from appliance.models import (
    AuditEvent,
    Call,
    Incident,
    Invite,
    MessageStatus,
    OutboundMessage,
    Role,
    SurveyLink,
    SurveyResponse,
    User,
    utcnow,
)
from appliance.services.audit import Actor
from appliance.services.calls import invites, life, states
from appliance.services.evaluation import survey, trial
from appliance.services.intake import incidents
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_incident, add_user

ACTOR = Actor("pc1")
GOOD = {"handling": "5", "outcome": "4", "use_again": "yes", "comment": "Quick and kind"}
LINK_RE = re.compile(r"https://evr\.test/s/([A-Za-z0-9_-]{43})")


def _ended_call(server: LiveServer, ref: str, category: str = "Theft") -> tuple[int, str]:
    """An incident whose video call connected and ended; its link's token."""
    with server.db.session() as session:
        user = session.exec(select(User).where(User.username == "pc1")).first() or add_user(
            session, "pc1", Role.HANDLER
        )
        session.flush()
        incident = add_incident(session, user, ref, category=category)
        incidents.set_eligibility(session, ACTOR, user, incident, ["ok"], [True])
        _, _, token = invites.create_invite(session, ACTOR, incident, user, timedelta(hours=1))
        return incident.id or 0, token


async def _consent(caller: FormClient, token: str) -> None:
    await caller.get(f"/v/{token}")
    response, _ = await caller.post(f"/v/{token}", {"consent_video": "yes"})
    assert response.status == 303


def _connect_and_end(server: LiveServer, token: str) -> None:
    with server.db.session() as session:
        invite = session.exec(
            select(Invite).where(Invite.token_hash == invites.hash_token(token))
        ).one()
        call = session.exec(select(Call).where(Call.invite_id == invite.id)).one()
        user = session.exec(select(User).where(User.username == "pc1")).one()
        states.caller_waiting(session, call, "t")
        life.admit(session, server.settings, call, user, "t")
        life.end(session, server.settings, call, ACTOR, "handler_ended")


def _survey_sms(server: LiveServer, incident_id: int) -> OutboundMessage | None:
    with server.db.session() as session:
        return session.exec(
            select(OutboundMessage).where(
                OutboundMessage.incident_id == incident_id,
                OutboundMessage.reference.startswith("survey-"),  # type: ignore[attr-defined]
            )
        ).first()


async def test_the_call_page_offers_the_survey_once_the_call_has_ended(
    live_server: LiveServer, caller: FormClient
) -> None:
    incident_id, token = _ended_call(live_server, "CAD/S/1")
    await _consent(caller, token)
    response, body = await caller.get(f"/v/{token}/call")
    assert 'id="survey-link"' in body and f"/v/{token}/survey" in body
    response, body = await caller.get(f"/v/{token}/survey")
    assert response.status == 409 and "once your video call has ended" in body

    _connect_and_end(live_server, token)
    sms = _survey_sms(live_server, incident_id)
    assert sms is not None and sms.status == "pending"
    assert sms.next_attempt_at > utcnow() + timedelta(minutes=100)  # sent later, not now

    response, body = await caller.get(f"/v/{token}/survey")
    assert response.status == 200 and "How did we do?" in body

    response, body = await caller.post(f"/v/{token}/survey", {**GOOD, "handling": ""})
    assert response.status == 400
    assert "choose an answer from 1 to 5 for: how positive" in body
    assert 'value="4" checked' in body  # what they had chosen is kept
    response, body = await caller.post(f"/v/{token}/survey", {**GOOD, "comment": "x" * 1001})
    assert response.status == 400 and "1000 characters" in body
    with live_server.db.session() as session:
        assert session.exec(select(SurveyResponse)).all() == []

    response, body = await caller.post(f"/v/{token}/survey", GOOD)
    assert response.status == 200 and "Thank you" in body
    with live_server.db.session() as session:
        answer = session.exec(select(SurveyResponse)).one()
        assert (answer.handling, answer.outcome, answer.use_again) == (5, 4, True)
        assert (answer.cohort, answer.channel, answer.incident_id) == (
            "service",
            "page",
            incident_id,
        )
        assert session.exec(select(SurveyLink)).one().used_at is not None
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "survey.answered")).one()
        assert event.object_type == "survey"  # not the incident: its timeline stays silent
        assert "Quick and kind" not in str(event.detail)
    assert _survey_sms(live_server, incident_id).status == MessageStatus.CANCELLED.value

    response, body = await caller.post(f"/v/{token}/survey", {**GOOD, "handling": "1"})
    assert response.status == 410 and "already have your answers" in body
    with live_server.db.session() as session:
        assert session.exec(select(SurveyResponse)).one().handling == 5


async def test_only_the_phone_the_call_was_on_reaches_the_survey(
    live_server: LiveServer, caller: FormClient
) -> None:
    """Another phone with the same link, or a made-up link, gets a plain refusal."""
    _, token = _ended_call(live_server, "CAD/S/2")
    await _consent(caller, token)
    _connect_and_end(live_server, token)
    stranger = FormClient(live_server.base_url)
    try:
        response, _ = await stranger.get(f"/v/{token}/survey")
        assert response.status == 404
        await stranger.get("/login")
        response, _ = await stranger.post(f"/v/{token}/survey", GOOD)
        assert response.status == 404
        response, _ = await stranger.get("/v/" + "A" * 43 + "/survey")
        assert response.status == 404
    finally:
        await stranger.close()
    with live_server.db.session() as session:
        assert session.exec(select(SurveyResponse)).all() == []


async def test_the_sms_link_works_once_and_expires(
    live_server: LiveServer, caller: FormClient
) -> None:
    incident_id, token = _ended_call(live_server, "CAD/S/3")
    await _consent(caller, token)
    _connect_and_end(live_server, token)
    sms = _survey_sms(live_server, incident_id)
    assert "please tell us how we did" in sms.body
    survey_token = LINK_RE.search(sms.body).group(1)
    with live_server.db.session() as session:
        link = session.exec(select(SurveyLink)).one()
        assert link.token_hash == survey.hash_token(survey_token)
        assert survey_token not in str(session.exec(select(AuditEvent)).all())

    phone = FormClient(live_server.base_url)
    try:
        response, body = await phone.get(f"/s/{survey_token}")
        assert response.status == 200 and "Would you use a video call with us again?" in body
        assert response.headers["Cache-Control"] == "no-store"  # nothing kept on the phone
        response, body = await phone.post(f"/s/{survey_token}", {**GOOD, "use_again": "maybe"})
        assert response.status == 400 and "answer yes or no" in body
        response, body = await phone.post(f"/s/{survey_token}", {**GOOD, "use_again": ""})
        assert response.status == 200
        response, body = await phone.get(f"/s/{survey_token}")
        assert response.status == 410
        response, _ = await phone.get("/s/" + "B" * 43)
        assert response.status == 404
    finally:
        await phone.close()
    with live_server.db.session() as session:
        answer = session.exec(select(SurveyResponse)).one()
        assert answer.channel == "sms" and answer.use_again is None

    # An expired link: a second incident's, moved past its end.
    second_id, second_token = _ended_call(live_server, "CAD/S/4")
    other = FormClient(live_server.base_url)
    try:
        await _consent(other, second_token)
        _connect_and_end(live_server, second_token)
        expired_token = LINK_RE.search(_survey_sms(live_server, second_id).body).group(1)
        with live_server.db.session() as session:
            link = session.exec(select(SurveyLink).where(SurveyLink.incident_id == second_id)).one()
            link.expires_at = utcnow() - timedelta(minutes=1)
            session.add(link)
        response, body = await other.get(f"/s/{expired_token}")
        assert response.status == 410 and "expired" in body
    finally:
        await other.close()


async def test_domestic_abuse_callers_are_never_texted_the_survey(
    live_server: LiveServer, caller: FormClient
) -> None:
    incident_id, token = _ended_call(live_server, "CAD/S/5", category="Domestic abuse")
    await _consent(caller, token)
    _connect_and_end(live_server, token)
    assert _survey_sms(live_server, incident_id) is None
    response, _ = await caller.get(f"/v/{token}/survey")
    assert response.status == 200  # the page still offers it, straight after the call


@pytest.fixture
async def supervisor(live_server: LiveServer) -> AsyncIterator[FormClient]:
    with live_server.db.session() as session:
        add_user(session, "sup1", Role.SUPERVISOR, Role.HANDLER)
    client = FormClient(live_server.base_url)
    await client.sign_in("sup1", PASSWORD)
    await client.get("/evaluation/trial")
    try:
        yield client
    finally:
        await client.close()


async def test_the_trial_from_the_supervisors_switch_to_the_control_arms_survey(
    live_server: LiveServer, supervisor: FormClient
) -> None:
    response, body = await supervisor.post("/evaluation/trial", {"action": "start", "seed": "x"})
    assert response.status == 400 and "whole number" in body
    response, _ = await supervisor.post("/evaluation/trial", {"action": "start", "seed": "31"})
    assert response.status == 303
    response, body = await supervisor.get("/evaluation/trial")
    assert "is <strong>running</strong>" in body
    assert "<code" not in body and "hidden while the trial runs" in body

    with live_server.db.session() as session:
        user = session.exec(select(User).where(User.username == "sup1")).one()
        ids = []
        for i in range(8):
            incident = add_incident(session, user, f"CAD/TR/{i}")
            incidents.set_eligibility(session, ACTOR, user, incident, ["ok"], [True])
            ids.append(incident.id)
    usual_id = None
    for incident_id in ids:
        await supervisor.get(f"/incidents/{incident_id}/trial")
        response, body = await supervisor.post(
            f"/incidents/{incident_id}/trial", {"step": "reveal"}
        )
        assert response.status == 409 and "consent is recorded" in body
        response, _ = await supervisor.post(
            f"/incidents/{incident_id}/trial", {"step": "consent", "consented": "yes"}
        )
        assert response.status == 303
        response, _ = await supervisor.post(f"/incidents/{incident_id}/trial", {"step": "reveal"})
        assert response.status == 303
        response, body = await supervisor.get(f"/incidents/{incident_id}/trial")
        if "usual response" in body and usual_id is None:
            usual_id = incident_id
    assert usual_id is not None

    response, body = await supervisor.post(
        f"/incidents/{usual_id}/trial", {"step": "in_person", "outcome": "advice_given", "at": "no"}
    )
    assert response.status == 409 and "date and time" in body
    response, _ = await supervisor.post(
        f"/incidents/{usual_id}/trial", {"step": "in_person", "outcome": "advice_given", "at": ""}
    )
    assert response.status == 303
    assert _survey_sms(live_server, usual_id) is not None  # the control arm's survey, by SMS
    response, body = await supervisor.post(
        f"/incidents/{usual_id}/invites", {"kind": "video", "channel": "link"}
    )
    assert response.status == 409 and "usual-response arm" in body

    response, body = await supervisor.get("/evaluation")
    assert response.status == 200
    assert "Usual response (trial arm)" in body
    assert "agreed to take part: 8" in body
    assert "CAD/TR" not in body and "Jane Marple" not in body
    response, body = await supervisor.get("/evaluation/trial")
    assert "same</span>" in body and "differs" not in body.split("<h2>Trial")[1]
    response, _ = await supervisor.post("/evaluation/trial", {"action": "stop"})
    assert response.status == 303
    response, body = await supervisor.get("/evaluation/trial")
    assert ">31</code>" in body
    with live_server.db.session() as session:
        assert trial.active(session) is None
        started, stopped = (
            session.exec(select(AuditEvent).where(AuditEvent.action == action)).one()
            for action in ("trial.started", "trial.stopped")
        )
        assert "seed" not in started.detail
        assert started.detail["seed_sha256"] == trial.seed_digest(31)
        assert stopped.detail["seed"] == 31


async def test_the_evaluation_page_is_for_supervisors(
    live_server: LiveServer, supervisor: FormClient
) -> None:
    with live_server.db.session() as session:
        add_user(session, "pc9", Role.HANDLER)
    handler = FormClient(live_server.base_url)
    try:
        await handler.sign_in("pc9", PASSWORD)
        for path in ("/evaluation", "/evaluation/trial"):
            response, _ = await handler.get(path)
            assert response.status == 403
    finally:
        await handler.close()
    response, body = await supervisor.get("/evaluation?from=2026-02-30&to=2026-03-01")
    assert response.status == 400 and "YYYY-MM-DD" in body
    response, body = await supervisor.get("/evaluation?from=2026-01-01&to=2026-01-31")
    assert response.status == 200 and "No incident in this period" in body
    with live_server.db.session() as session:
        assert session.exec(select(Incident)).all() == []


async def test_the_visit_time_is_typed_in_uk_time_across_both_clock_changes(
    live_server: LiveServer, supervisor: FormClient
) -> None:
    """The visit's time is typed as the officer's UK wall clock and stored in UTC: an hour
    apart in summer; the spring hour that never happened is refused; the autumn hour
    that happened twice is asked about (BST or GMT), the typed time kept."""
    with live_server.db.session() as session:
        user = session.exec(select(User).where(User.username == "sup1")).one()
        trial.start(session, ACTOR, user, live_server.settings, seed=5)
        usual: list[int] = []
        for i in range(40):
            incident = add_incident(
                session, user, f"CAD/UK/{i}", received_at=datetime(2026, 1, 1, tzinfo=UTC)
            )
            incidents.set_eligibility(session, ACTOR, user, incident, ["ok"], [True])
            trial.record_consent(session, ACTOR, user, incident, True)
            if trial.reveal(session, ACTOR, user, incident) == "usual":
                usual.append(incident.id or 0)
            if len(usual) == 2:
                break
    summer, autumn = usual

    def visit_of(incident_id: int) -> datetime | None:
        with live_server.db.session() as session:
            allocation = trial.allocation_of(session, session.get(Incident, incident_id))
            return allocation.in_person_at

    step = {"step": "in_person", "outcome": "advice_given"}
    await supervisor.get(f"/incidents/{summer}/trial")
    response, body = await supervisor.post(
        f"/incidents/{summer}/trial", {**step, "at": "2026-03-29T01:30"}
    )
    assert response.status == 409 and "there was no 01:30 on 29 March 2026" in body
    assert visit_of(summer) is None
    response, _ = await supervisor.post(
        f"/incidents/{summer}/trial", {**step, "at": "2026-07-14T14:30"}
    )
    assert response.status == 303
    assert visit_of(summer) == datetime(2026, 7, 14, 13, 30, tzinfo=UTC)
    response, body = await supervisor.get(f"/incidents/{summer}/trial")
    assert "In-person response 2026-07-14 14:30 BST" in body

    await supervisor.get(f"/incidents/{autumn}/trial")
    response, body = await supervisor.post(
        f"/incidents/{autumn}/trial", {**step, "at": "2026-10-25T01:30"}
    )
    assert response.status == 409 and "happened twice" in body
    assert 'name="clocks" value="GMT"' in body and 'value="2026-10-25T01:30"' in body
    assert visit_of(autumn) is None
    response, _ = await supervisor.post(
        f"/incidents/{autumn}/trial", {**step, "at": "2026-10-25T01:30", "clocks": "GMT"}
    )
    assert response.status == 303
    assert visit_of(autumn) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    # The first 01:30 that night was BST, an hour earlier; January is GMT, as typed.
    typed = datetime(2026, 10, 25, 1, 30)
    assert dates.uk_wall_clock("at", typed, "BST") == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    winter = dates.uk_wall_clock("at", datetime(2026, 1, 14, 14, 30))
    assert winter == datetime(2026, 1, 14, 14, 30, tzinfo=UTC)
