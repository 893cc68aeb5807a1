"""Every caller-safety rule of Rapid Video Response holds on every path (items 7-10):
nothing reaches an RVR caller's phone unless the safety questions stand answered yes,
a "no" closes every open door, the ordinary checklist and appointments cannot walk
around it, RVR work is for RVR officers, and no survey SMS goes whatever the lists say."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from appliance.config import Settings, SettingsError, load_settings
from appliance.db import Database
from appliance.models import (
    CallState,
    Incident,
    MessageStatus,
    OutboundMessage,
    Role,
    RvrCase,
    User,
    utcnow,
)
from appliance.services.audit import Actor
from appliance.services.calls import invites
from appliance.services.calls.invites import LinkProblem
from appliance.services.calls.states import CallError
from appliance.services.evaluation import survey
from appliance.services.intake import appointments, incidents, queue
from appliance.services.intake.appointments import AppointmentError
from appliance.services.intake.incidents import IncidentError
from appliance.services.outbox import messages
from appliance.services.outbox.messages import DeliveryResult, MessageError, RetryPolicy
from appliance.services.rvr import track
from appliance.services.rvr.track import SAFETY_QUESTIONS
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_incident, add_user

pytestmark = pytest.mark.sqlite_only(
    reason="the rules are the services' Python; the RVR services run on both engines in "
    "tests/integration/test_rvr.py"
)

DA = "Domestic abuse"
ACTOR = Actor("rvr1", "10.0.0.5")
YES = {q.key: True for q in SAFETY_QUESTIONS}
NO = {**YES, "offender_absent": False}


def _officer_and_incident(session: Session, ref: str = "CAD/S/1") -> tuple[User, Incident]:
    officer = add_user(session, "rvr1", Role.HANDLER, Role.RVR_OFFICER)
    return officer, add_incident(session, officer, ref, category=DA)


def _sms(session: Session) -> list[OutboundMessage]:
    return list(session.exec(select(OutboundMessage)).all())


# -- item 7: no SMS to an RVR caller unless safety passes, on any path ---------------------


def test_no_path_texts_an_rvr_caller_before_safety_passes(db: Database, settings: Settings) -> None:
    """Tried, before the safety questions: the ordinary SMS invite service (upload and
    video kinds), a raw queued SMS, and an appointment. All refused, nothing queued.
    The legitimate path, safety all yes then Transfer now, sends exactly one."""
    with db.session() as session:
        officer, incident = _officer_and_incident(session)
        incidents.set_eligibility(session, ACTOR, officer, incident, ["ok"], [True])
    with db.session() as session:
        incident = session.exec(select(Incident)).one()
        officer = session.exec(select(User)).one()
        for kind in (invites.VIDEO, invites.UPLOAD):
            with pytest.raises(MessageError, match="safety"):
                invites.create_sms_invite(
                    session, ACTOR, incident, officer, settings, safe_to_contact=True, kind=kind
                )
        with pytest.raises(MessageError, match="safety"):
            messages.queue_sms(
                session,
                ACTOR,
                settings=settings,
                to_phone=incident.caller_phone,
                body="hello",
                reference="r-1",
                incident_id=incident.id,
            )
        with pytest.raises(AppointmentError, match="Rapid Video Response"):
            appointments.book(
                session, ACTOR, settings, incident, officer, utcnow() + timedelta(days=1), True
            )
        session.rollback()  # what a refusal half-made (the invite row) goes with it
    with db.session() as session:
        assert _sms(session) == []
        incident = session.exec(select(Incident)).one()
        officer = session.exec(select(User)).one()
        assert track.record_safety(session, settings, ACTOR, officer, incident, YES).passed
        track.transfer(session, settings, ACTOR, officer, incident)
    with db.session() as session:
        assert [m.purpose for m in _sms(session)] == ["invite"]


def test_even_after_safety_passes_only_the_transfer_invite_may_go(
    db: Database, settings: Settings
) -> None:
    """Tried, with safety passed: a survey, a reminder and a cancellation SMS to the
    RVR caller, and an appointment. Each refused: a later text may be read by the abuser."""
    with db.session() as session:
        officer, incident = _officer_and_incident(session)
        track.record_safety(session, settings, ACTOR, officer, incident, YES)
        for purpose in ("survey", "reminder", "cancellation"):
            with pytest.raises(MessageError, match="only the transfer"):
                messages.queue_sms(
                    session,
                    ACTOR,
                    settings=settings,
                    to_phone=incident.caller_phone,
                    body="hello",
                    reference="r-1",
                    incident_id=incident.id,
                    purpose=purpose,
                )
        with pytest.raises(AppointmentError, match="Rapid Video Response"):
            appointments.book(
                session, ACTOR, settings, incident, officer, utcnow() + timedelta(days=1), True
            )


def test_the_ordinary_checklist_cannot_flip_an_rvr_no_back_to_eligible(
    db: Database, settings: Settings
) -> None:
    """Tried: safety answered no, then the ordinary eligibility checklist all yes (which
    used to make the incident eligible again, opening the appointment path)."""
    with db.session() as session:
        officer, incident = _officer_and_incident(session)
        track.record_safety(session, settings, ACTOR, officer, incident, NO)
        with pytest.raises(IncidentError, match="safety questions decide"):
            incidents.record_eligibility(
                session, ACTOR, officer, incident, ["ok"], [True], settings=settings
            )
        assert incident.eligibility == "ineligible"
        ordinary = add_incident(session, officer, "CAD/S/2")  # the checklist still works there
        assert incidents.record_eligibility(
            session, ACTOR, officer, ordinary, ["ok"], [True], settings=settings
        )


# -- item 8: a "no" revokes every open link; resend refused ---------------------------------


def test_a_safety_no_revokes_the_sent_link_and_resend_is_refused(
    db: Database, settings: Settings
) -> None:
    """Tried: safety yes, Transfer now (the SMS delivered), then safety re-answered no,
    then the link opened and "Send again" pressed; and once more after a new yes. The
    link is dead, the resend refused both times; a new transfer is the way back."""
    with db.session() as session:
        officer, incident = _officer_and_incident(session)
        track.record_safety(session, settings, ACTOR, officer, incident, YES)
        call, message = track.transfer(session, settings, ACTOR, officer, incident)
        messages.record_result(
            session, message, DeliveryResult.sent("gw-1"), utcnow(), RetryPolicy()
        )
        token_call = call.id
    with db.session() as session:
        incident = session.exec(select(Incident)).one()
        officer = session.get(User, incident.owner_id)
        result = track.record_safety(session, settings, ACTOR, officer, incident, NO)
        assert [c.id for c in result.revoked] == [token_call]
        assert result.revoked[0].state == CallState.CANCELLED.value
    with db.session() as session:
        sent = session.exec(select(OutboundMessage)).one()
        with pytest.raises(MessageError, match="safety"):
            messages.resend(session, settings, ACTOR, sent)
    with db.session() as session:
        incident = session.exec(select(Incident)).one()
        officer = session.get(User, incident.owner_id)
        track.record_safety(session, settings, ACTOR, officer, incident, YES)
        sent = session.exec(select(OutboundMessage)).one()
        with pytest.raises(MessageError, match="no longer works"):
            messages.resend(session, settings, ACTOR, sent)
        _, fresh = track.transfer(session, settings, ACTOR, officer, incident)
        assert fresh.status == MessageStatus.PENDING.value


def test_a_safety_no_withdraws_an_sms_not_yet_sent_and_the_link_stops(
    db: Database, settings: Settings
) -> None:
    """Tried: Transfer now, then a "no" before the gateway took the SMS; then the
    caller's link is opened anyway."""
    with db.session() as session:
        officer, incident = _officer_and_incident(session)
        track.record_safety(session, settings, ACTOR, officer, incident, YES)
        _, _, token = invites.create_invite(
            session, ACTOR, incident, officer, timedelta(minutes=30)
        )
        track.transfer(session, settings, ACTOR, officer, incident)
        track.record_safety(session, settings, ACTOR, officer, incident, NO)
        assert {m.status for m in _sms(session)} == {MessageStatus.CANCELLED.value}
        assert messages.due(session, utcnow() + timedelta(days=1)) == []
        assert invites.open_link(session, token, None, "t") is LinkProblem.REVOKED


def test_the_sender_withdraws_what_safety_no_longer_allows(
    db: Database, settings: Settings
) -> None:
    """The last line: a transfer SMS queued while safety passed, then the RVR record
    turned to not passing by some path that withdrew nothing (set directly here). The
    dispatcher's pick of due messages withdraws it instead of sending it."""
    with db.session() as session:
        officer, incident = _officer_and_incident(session)
        track.record_safety(session, settings, ACTOR, officer, incident, YES)
        track.transfer(session, settings, ACTOR, officer, incident)
        other = add_incident(session, officer, "CAD/S/3")  # not RVR: goes as ever
        messages.queue_sms(
            session,
            ACTOR,
            settings=settings,
            to_phone=other.caller_phone,
            body="hello",
            reference="r-2",
            incident_id=other.id,
        )
        case = session.exec(select(RvrCase)).one()
        case.safety_passed = False
        session.add(case)
    with db.session() as session:
        due = messages.due(session, utcnow() + timedelta(minutes=1))
        assert [m.reference for m in due] == ["r-2"]
    with db.session() as session:
        statuses = {m.reference: m.status for m in _sms(session)}
        assert statuses["r-2"] == MessageStatus.PENDING.value
        assert MessageStatus.CANCELLED.value in statuses.values()


async def test_resend_on_the_incident_page_is_refused_after_a_no(
    live_server: LiveServer,
) -> None:
    """The same attack through the web: "Resend" on the incident page after a "no"."""
    settings = live_server.settings
    with live_server.db.session() as session:
        officer, incident = _officer_and_incident(session)
        track.record_safety(session, settings, ACTOR, officer, incident, YES)
        _, message = track.transfer(session, settings, ACTOR, officer, incident)
        messages.record_result(
            session, message, DeliveryResult.sent("gw-1"), utcnow(), RetryPolicy()
        )
        track.record_safety(session, settings, ACTOR, officer, incident, NO)
        incident_id, message_id = incident.id, message.id
    client = FormClient(live_server.base_url)
    try:
        await client.sign_in("rvr1", PASSWORD)
        await client.get(f"/incidents/{incident_id}")
        response, page = await client.post(f"/incidents/{incident_id}/messages/{message_id}/resend")
        assert response.status == 409 and "Not resent" in page
    finally:
        await client.close()
    with live_server.db.session() as session:
        assert len(_sms(session)) == 1


# -- item 9: RVR work needs the RVR role ------------------------------------------------------


async def test_a_plain_handler_cannot_reach_rvr_work(live_server: LiveServer) -> None:
    """Tried by a handler without rvr_officer: the RVR page of an RVR incident nobody
    owns, take it, the safety questions, Transfer now, the incident page, and finding it
    in the incident list. Each refused; an RVR officer still gets the page."""
    with live_server.db.session() as session:
        add_user(session, "pc1", Role.HANDLER)
        add_user(session, "rvr1", Role.HANDLER, Role.RVR_OFFICER)
        incident = add_incident(session, None, "CAD/RVR/77", category=DA, source="api:cad")
        incident_id = incident.id
    plain = FormClient(live_server.base_url)
    try:
        await plain.sign_in("pc1", PASSWORD)
        _, listing = await plain.get("/incidents")
        assert "CAD/RVR/77" not in listing
        response, _ = await plain.get(f"/incidents/{incident_id}/rvr")
        assert response.status == 403
        response, _ = await plain.get(f"/incidents/{incident_id}")
        assert response.status == 403
        for action in ("take", "rvr/safety", "rvr/transfer"):
            answers = {q.key: "yes" for q in SAFETY_QUESTIONS}
            response, _ = await plain.post(f"/incidents/{incident_id}/{action}", answers)
            assert response.status == 403, action
    finally:
        await plain.close()
    with live_server.db.session() as session:
        assert session.get(Incident, incident_id).owner_id is None
        assert _sms(session) == []
    officer = FormClient(live_server.base_url)
    try:
        await officer.sign_in("rvr1", PASSWORD)
        response, _ = await officer.get(f"/incidents/{incident_id}/rvr")
        assert response.status == 200
    finally:
        await officer.close()


async def test_rvr_work_made_by_a_plain_handler_goes_to_the_rvr_queue(
    live_server: LiveServer,
) -> None:
    """Tried: a handler without rvr_officer makes a Domestic abuse incident by hand, the
    way to own one (and so act on it) without taking it. It is made, but not theirs."""
    with live_server.db.session() as session:
        add_user(session, "pc1", Role.HANDLER)
    plain = FormClient(live_server.base_url)
    try:
        await plain.sign_in("pc1", PASSWORD)
        await plain.get("/incidents")
        response, _ = await plain.post(
            "/incidents",
            {
                "cad_reference": "CAD/RVR/80",
                "grade": "2",
                "category": DA,
                "caller_name": "Jane Marple",
                "caller_phone": "07700 900123",
            },
        )
        assert response.status == 303
        assert response.headers["Location"] == "/incidents?notice=rvr_queued"
    finally:
        await plain.close()
    with live_server.db.session() as session:
        incident = session.exec(select(Incident)).one()
        assert incident.owner_id is None
        assert [r.incident.id for r in track.waiting(session, live_server.settings)] == [
            incident.id
        ]


def test_take_and_assign_of_rvr_work_need_the_rvr_role(db: Database, settings: Settings) -> None:
    """The same rule in the services: a plain handler cannot take an RVR incident, and a
    supervisor cannot assign one to them; an RVR officer can be given it."""
    with db.session() as session:
        plain = add_user(session, "pc1", Role.HANDLER)
        officer = add_user(session, "rvr1", Role.HANDLER, Role.RVR_OFFICER)
        incident = add_incident(session, None, "CAD/RVR/78", category=DA)
        with pytest.raises(IncidentError, match="RVR officer"):
            incidents.take(session, settings, ACTOR, plain, incident)
        with pytest.raises(IncidentError, match="not an RVR officer"):
            queue.assign(session, settings, Actor("sup1"), incident, plain)
        queue.assign(session, settings, Actor("sup1"), incident, officer)
        assert incident.owner_id == officer.id


# -- item 10: no survey SMS for RVR, and lists that contradict are refused -----------------


def test_no_survey_sms_for_rvr_whatever_the_skip_list_says(
    db: Database, settings: Settings
) -> None:
    """Tried: an RVR category left off the survey's skip list (as a category added to
    EVR_RVR_CATEGORIES alone would be), then the survey offered after the call."""
    careless = settings.model_copy(
        update={"rvr_categories": [DA, "Stalking"], "survey_sms_skip_categories": [DA]}
    )
    with db.session() as session:
        officer = add_user(session, "rvr1", Role.HANDLER, Role.RVR_OFFICER)
        stalking = add_incident(session, officer, "CAD/ST/1", category="Stalking")
        assert survey.offer_by_sms(session, careless, stalking) is None
        theft = add_incident(session, officer, "CAD/TH/1")
        assert survey.offer_by_sms(session, careless, theft) is not None  # others still get it
        assert [m.incident_id for m in _sms(session)] == [theft.id]


def test_start_up_refuses_an_rvr_category_missing_from_the_survey_skip_list() -> None:
    with pytest.raises(SettingsError, match="survey_sms_skip_categories must hold"):
        load_settings(rvr_categories=[DA, "Stalking"], survey_sms_skip_categories=[DA])
    fine = load_settings(
        rvr_categories=[DA, "Stalking"], survey_sms_skip_categories=[DA, "Stalking"]
    )
    assert fine.rvr_categories == [DA, "Stalking"]


def test_the_transfer_still_works_end_to_end(db: Database, settings: Settings) -> None:
    """The legitimate path after all the refusals: yes, transfer, the link opens."""
    with db.session() as session:
        officer, incident = _officer_and_incident(session)
        track.record_safety(session, settings, ACTOR, officer, incident, YES)
        call, message = track.transfer(session, settings, ACTOR, officer, incident)
        with pytest.raises(CallError):
            invites.create_sms_invite(
                session, ACTOR, incident, officer, settings, safe_to_contact=False
            )
        assert message.purpose == "invite" and call.state == CallState.INVITED.value
