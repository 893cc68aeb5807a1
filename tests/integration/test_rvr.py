"""Rapid Video Response: the RVR queue, safety before the invite, safety on the phone (no-store,
neutral words, quick exit), safety on the call, DASH and the MARAC flag, Clare's Law records,
and the time from the incident to the caller's first screen."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from appliance import metrics
from appliance.config import Settings, SettingsError, load_settings, unsafe_word
from appliance.db import Database
from appliance.models import (
    AuditEvent,
    Call,
    DashAssessment,
    Disclosure,
    Incident,
    OutboundMessage,
    Role,
    RvrCase,
    utcnow,
)
from appliance.services.audit import Actor
from appliance.services.calls import invites
from appliance.services.intake import queue
from appliance.services.rvr import dash, track
from appliance.services.rvr.dash import DashError
from appliance.services.rvr.track import SAFETY_QUESTIONS
from appliance.web.api.schemas import IncidentOut
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_incident, add_user

DA = "Domestic abuse"
LINK_RE = re.compile(r"https://\S+/v/([A-Za-z0-9_-]{43})")
ASSET_RE = re.compile(r'(?:src|href)="(/assets/[^"]+)"')
TITLE_RE = re.compile(r"<title>(.*?)</title>", re.S)
OFFENCE_WORDS = ["abuse", "domestic", "violence", "victim", "offence", "offender", "assault"]
ALL_YES = {q.key: "yes" for q in SAFETY_QUESTIONS}


# -- the queue ----------------------------------------------------------------------------


def test_rvr_work_goes_above_grade_3_work_even_when_that_is_overdue(
    db: Database, settings: Settings
) -> None:
    with db.session() as session:
        add_incident(session, None, "CAD/G3/OLD", received_at=utcnow() - timedelta(days=3))
        add_incident(session, None, "CAD/G3/NEW")
        add_incident(session, None, "CAD/G1/1", grade=1)
        add_incident(session, None, "CAD/RVR/1", category=DA)
    with db.session() as session:
        rows = queue.waiting(session, settings)
        first = rows[0]
        assert first.incident.cad_reference == "CAD/RVR/1"
        assert first.rvr and first.target_at - first.incident.received_at == timedelta(minutes=15)
        assert [r.incident.cad_reference for r in track.waiting(session, settings)] == ["CAD/RVR/1"]


def test_an_rvr_officer_takes_the_next_one_and_then_none_is_left(
    db: Database, settings: Settings
) -> None:
    with db.session() as session:
        officer = add_user(session, "rvr1", Role.HANDLER, Role.RVR_OFFICER)
        add_incident(session, None, "CAD/G3/1")
        add_incident(session, None, "CAD/RVR/2", category=DA)
    with db.session() as session:
        taken = track.take_next(session, settings, Actor("rvr1"), officer)
        assert taken is not None and taken.cad_reference == "CAD/RVR/2"
        assert taken.owner_id == officer.id
    with db.session() as session:
        assert track.take_next(session, settings, Actor("rvr1"), officer) is None


# -- settings -----------------------------------------------------------------------------


def test_settings_refuse_unsafe_words_in_the_rvr_sms_and_page_title() -> None:
    """Tried: a title naming the offence, an SMS naming the police through the force's
    name, and a force list that marks the default title unsafe. Each is refused by name."""
    with pytest.raises(SettingsError, match=r"rvr_page_title.*domestic"):
        load_settings(rvr_page_title="Domestic support")
    with pytest.raises(SettingsError, match=r"rvr_sms_template.*police"):
        load_settings(force_name="Wessex Police", rvr_sms_template="{force_name}: {link}")
    with pytest.raises(SettingsError, match=r"must stay neutral.*appointment"):
        load_settings(unsafe_words=["appointment"])
    with pytest.raises(SettingsError, match="quick_exit_url"):
        load_settings(quick_exit_url="javascript:alert(1)")
    assert unsafe_word("Your appointment", load_settings().unsafe_words) is None


# -- the web path -------------------------------------------------------------------------


@pytest.fixture
async def officer(live_server: LiveServer) -> AsyncIterator[tuple[FormClient, int]]:
    """A signed-in RVR officer who has taken an RVR incident from CAD."""
    with live_server.db.session() as session:
        add_user(session, "rvr1", Role.HANDLER, Role.RVR_OFFICER)
        add_incident(session, None, "CAD/RVR/9", category=DA, source="api:cad")
    client = FormClient(live_server.base_url)
    await client.sign_in("rvr1", PASSWORD)
    await client.get("/rvr")
    response, _ = await client.post("/rvr/next")
    assert response.status == 303, response.status
    incident_id = int(re.search(r"/incidents/(\d+)/rvr", response.headers["Location"]).group(1))
    try:
        yield client, incident_id
    finally:
        await client.close()


def _sms(server: LiveServer) -> list[OutboundMessage]:
    with server.db.session() as session:
        return list(session.exec(select(OutboundMessage)).all())


async def _safety(client: FormClient, incident_id: int, answers: dict[str, str]):
    await client.get(f"/incidents/{incident_id}/rvr")
    return await client.post(f"/incidents/{incident_id}/rvr/safety", answers)


async def _transfer(client: FormClient, incident_id: int):
    await client.get(f"/incidents/{incident_id}/rvr")
    return await client.post(f"/incidents/{incident_id}/rvr/transfer")


async def test_a_no_on_any_safety_question_sends_no_sms_and_says_what_to_do(
    live_server: LiveServer, officer: tuple[FormClient, int]
) -> None:
    """Tried: each safety question answered no in turn, then Transfer now, then the
    ordinary invite form. Nothing is sent; the page says what to do instead."""
    client, incident_id = officer
    for question in SAFETY_QUESTIONS:
        response, body = await _safety(client, incident_id, {**ALL_YES, question.key: "no"})
        assert response.status == 200
        assert "No link will be sent" in body and question.if_not in body
        response, body = await _transfer(client, incident_id)
        assert response.status == 409 and "safety questions first" in body
        response, body = await client.post(
            f"/incidents/{incident_id}/invites", {"channel": "sms", "safe_to_contact": "yes"}
        )
        assert response.status == 409 and "Rapid Video Response" in body
        assert _sms(live_server) == []
        with live_server.db.session() as session:
            incident = session.get(Incident, incident_id)
            assert incident.eligibility == "ineligible"
            assert session.exec(select(RvrCase)).one().safety_passed is False
    with live_server.db.session() as session:
        passes = session.exec(select(AuditEvent).where(AuditEvent.action == "rvr.safety")).all()
        assert [e.detail["passed"] for e in passes] == [False] * len(SAFETY_QUESTIONS)

    response, _ = await _safety(client, incident_id, ALL_YES)
    assert response.status == 303
    response, _ = await _transfer(client, incident_id)
    assert response.status == 303
    assert len(_sms(live_server)) == 1


async def _caller_path(live_server: LiveServer, caller: FormClient, token: str) -> list:
    """Every response the caller's phone gets on the RVR path, with its body."""
    seen = []

    async def get(path: str) -> str:
        response, body = await caller.get(path)
        seen.append((path, response, body))
        return body

    body = await get(f"/v/{token}")
    for asset in ASSET_RE.findall(body):
        await get(asset)
    # The full privacy notice the page links to is as neutral as the page.
    notices = set(re.findall(r'href="(/privacy[^"]*)"', body))
    assert notices == {"/privacy?look=neutral"}, notices
    await get(notices.pop())
    response, body = await caller.post(f"/v/{token}", {"consent_video": "yes"})
    seen.append((f"POST /v/{token}", response, body))
    assert response.status == 303
    body = await get(f"/v/{token}/call")
    for asset in ASSET_RE.findall(body):
        await get(asset)
    response, body = await caller.post(f"/v/{token}/exit")
    seen.append((f"POST /v/{token}/exit", response, body))
    assert response.status == 204
    await get(f"/v/{token}")  # after the quick exit
    await get("/v/" + "x" * 43)  # a mistyped link
    return seen


async def test_every_caller_response_on_the_rvr_path_is_no_store_and_neutral(
    live_server: LiveServer, officer: tuple[FormClient, int], caller: FormClient
) -> None:
    client, incident_id = officer
    await _safety(client, incident_id, ALL_YES)
    await _transfer(client, incident_id)
    (message,) = _sms(live_server)
    unsafe = live_server.settings.unsafe_words
    assert (
        unsafe_word(message.body.replace(LINK_RE.search(message.body).group(0), ""), unsafe) is None
    )
    assert "Wessex" not in message.body and live_server.settings.force_name not in message.body

    seen = await _caller_path(live_server, caller, LINK_RE.search(message.body).group(1))
    assert len(seen) >= 9
    for path, response, body in seen:
        assert response.headers.get("Cache-Control") == "no-store", path
        if response.content_type != "text/html":
            continue
        title = TITLE_RE.search(body).group(1).strip()
        assert title == live_server.settings.rvr_page_title, path
        assert unsafe_word(title, unsafe) is None, path
        text = re.sub(r"<[^>]+>", " ", body)
        assert unsafe_word(text, OFFENCE_WORDS) is None, (path, unsafe_word(text, OFFENCE_WORDS))
        assert live_server.settings.force_name not in text, path
        assert "police" not in text.lower(), path
        assert 'id="quick-exit"' in body and live_server.settings.quick_exit_url in body, path
        assert "serviceWorker" not in body
    assert any(".js?" in p for p, _, _ in seen) and any(".css?" in p for p, _, _ in seen)
    exit_response = next(r for p, r, _ in seen if p.endswith("/exit"))
    assert exit_response.headers["Clear-Site-Data"] == '"cache", "storage"'
    with live_server.db.session() as session:
        call = session.exec(select(Call)).one()
        assert call.end_reason == "quick_exit"
    assert not list(Path("appliance/static/js").glob("*worker*"))
    for script in Path("appliance/static/js").glob("*.js"):
        assert "serviceWorker" not in script.read_text(), script


async def test_ordinary_collection_pages_are_no_store_without_the_quick_exit(
    live_server: LiveServer, caller: FormClient
) -> None:
    """An upload link of an ordinary incident: its pages are no-store too, with the
    force's usual look and no quick exit (only RVR pages carry it: elsewhere a mistap
    would end a call for nothing)."""
    with live_server.db.session() as session:
        handler = add_user(session, "pc1", Role.HANDLER)
        incident = add_incident(session, handler, "CAD/UP/1")
        _, _, token = invites.create_invite(
            session, Actor("pc1"), incident, handler, timedelta(hours=1), kind=invites.UPLOAD
        )
    response, body = await caller.get(f"/v/{token}")
    assert response.headers["Cache-Control"] == "no-store"
    assert 'id="quick-exit"' not in body and live_server.settings.force_name in body
    response, _ = await caller.post(f"/v/{token}", {"consent": "yes"})
    response, body = await caller.get(f"/v/{token}/upload")
    assert response.status == 200 and 'id="quick-exit"' not in body
    assert response.headers["Cache-Control"] == "no-store"
    for asset in ASSET_RE.findall(body):
        response, _ = await caller.get(asset)
        assert response.headers["Cache-Control"] == "no-store", asset
    response, _ = await caller.get("/static/app.css")
    assert response.headers["Cache-Control"] == "no-cache"  # staff pages may revalidate


def _first_screen_count() -> float:
    value = metrics.REGISTRY.get_sample_value(
        "evr_caller_first_screen_seconds_count", {"track": "rvr"}
    )
    return value or 0.0


async def test_time_to_the_callers_first_screen_is_recorded_once(
    live_server: LiveServer, officer: tuple[FormClient, int], caller: FormClient
) -> None:
    client, incident_id = officer
    await _safety(client, incident_id, ALL_YES)
    await _transfer(client, incident_id)
    token = LINK_RE.search(_sms(live_server)[0].body).group(1)
    with live_server.db.session() as session:
        assert session.get(Incident, incident_id).caller_first_screen_at is None
    before = utcnow()
    observed = _first_screen_count()
    await caller.get(f"/v/{token}")
    assert _first_screen_count() == observed + 1
    with live_server.db.session() as session:
        incident = session.get(Incident, incident_id)
        first_at, seconds = incident.caller_first_screen_at, incident.caller_first_screen_seconds
        assert first_at >= before and seconds is not None
        assert seconds == pytest.approx((first_at - incident.created_at).total_seconds(), abs=0.01)
    await caller.get(f"/v/{token}")
    with live_server.db.session() as session:
        assert session.get(Incident, incident_id).caller_first_screen_at == first_at
    assert _first_screen_count() == observed + 1
    _, body = await client.get(f"/incidents/{incident_id}/rvr")
    assert 'id="first-screen"' in body
    with live_server.db.session() as session:
        shown = IncidentOut.of(session.get(Incident, incident_id)).model_dump(mode="json")
    assert shown["caller_first_screen_seconds"] == seconds  # what CAD reads


async def test_caller_not_safe_ends_the_video_and_flags_a_call_back(
    live_server: LiveServer, officer: tuple[FormClient, int]
) -> None:
    client, incident_id = officer
    await _safety(client, incident_id, ALL_YES)
    await _transfer(client, incident_id)
    await client.get(f"/incidents/{incident_id}/rvr")
    response, body = await client.post(
        f"/incidents/{incident_id}/rvr/caller-safe",
        {"code_word": "bluebell"},
        headers={"X-Requested-With": "fetch"},
    )
    assert response.status == 200 and "alone and safe" in json.loads(body)["message"]
    response, _ = await client.post(f"/incidents/{incident_id}/rvr/not-safe")
    assert response.status == 303 and response.headers["Location"].endswith("notice=not_safe")
    with live_server.db.session() as session:
        case = session.exec(select(RvrCase)).one()
        assert case.callback_needed and case.not_safe_at and case.caller_safe_at
        assert case.code_word == "bluebell"
        call = session.exec(select(Call)).one()
        assert call.state == "cancelled" and call.end_reason == "caller_not_safe"
        words = [e.detail for e in session.exec(select(AuditEvent)).all()]
        assert "bluebell" not in json.dumps(words)
    response, body = await client.get(f"/incidents/{incident_id}/rvr")
    assert 'id="callback-flag"' in body


async def test_dash_and_disclosures_from_the_console(
    live_server: LiveServer, officer: tuple[FormClient, int]
) -> None:
    """Tried: a checklist with one answer missing, an unknown risk level and an unknown
    disclosure kind (each refused, nothing kept), then good ones."""
    client, incident_id = officer
    questions = dash.questions_for(live_server.settings)
    answers = {q.id: "no" for q in questions.items}
    fetch = {"X-Requested-With": "fetch"}
    await client.get(f"/incidents/{incident_id}/rvr")
    path = f"/incidents/{incident_id}/dash"
    missing = {k: v for k, v in answers.items() if k != "q05"}
    response, body = await client.post(path, {**missing, "risk_level": "high"}, headers=fetch)
    assert response.status == 400 and "1 not answered" in json.loads(body)["error"]
    response, body = await client.post(path, {**answers, "risk_level": "severe"}, headers=fetch)
    assert response.status == 400 and "risk level" in json.loads(body)["error"]
    high = {**answers, "q14": "yes", "q14_note": "last week", "risk_level": "high"}
    response, body = await client.post(path, high, headers=fetch)
    assert response.status == 200 and "MARAC referral flagged" in json.loads(body)["message"]

    dvds = f"/incidents/{incident_id}/disclosures"
    response, body = await client.post(dvds, {"kind": "gossip"}, headers=fetch)
    assert response.status == 400 and "Clare's Law" in json.loads(body)["error"]
    response, body = await client.post(
        dvds, {"kind": "right_to_ask_request", "subject": "J Smith"}, headers=fetch
    )
    assert response.status == 200
    with live_server.db.session() as session:
        (assessment,) = session.exec(select(DashAssessment)).all()
        assert assessment.yes_count == 1 and assessment.marac_referral
        assert assessment.notes == {"q14": "last week"}
        (disclosure,) = session.exec(select(Disclosure)).all()
        assert disclosure.kind == "right_to_ask_request" and disclosure.subject == "J Smith"
    response, body = await client.get(f"/incidents/{incident_id}/rvr")
    assert "MARAC referral" in body and "Right to ask" in body


# -- DASH scoring -------------------------------------------------------------------------


def test_the_shipped_dash_file_has_27_questions_and_a_force_can_replace_it(
    tmp_path: Path,
) -> None:
    """Tried: a replacement file, one with a repeated id, one that is not JSON."""
    shipped = dash.load_questions()
    assert len(shipped.items) == 27 and len({q.id for q in shipped.items}) == 27
    own = tmp_path / "dash.json"
    own.write_text(json.dumps([{"id": "a", "text": "First"}, {"id": "b", "text": "Second"}]))
    replaced = dash.questions_for(load_settings(dash_questions_file=own))
    assert [q.text for q in replaced.items] == ["First", "Second"] and replaced.version
    own.write_text(json.dumps([{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]))
    with pytest.raises(DashError, match="unique"):
        dash.load_questions(own)
    own.write_text("not json")
    with pytest.raises(DashError, match=str(own)):
        dash.load_questions(own)


@pytest.mark.parametrize(
    ("yes", "not_known", "level", "marac"),
    [
        (0, 0, "standard", False),
        (3, 2, "high", True),
        (13, 5, "medium", False),
        (14, 0, "medium", True),
        (27, 0, "standard", True),
    ],
)
def test_dash_scoring_and_the_marac_flag_follow_the_entries(
    yes: int, not_known: int, level: str, marac: bool
) -> None:
    ids = [q.id for q in dash.load_questions().items]
    answers = {
        qid: "yes" if n < yes else ("not_known" if n < yes + not_known else "no")
        for n, qid in enumerate(ids)
    }
    score = dash.score(answers, level, marac_yes_count=14)
    assert (score.yes, score.not_known, score.marac_referral) == (yes, not_known, marac)


def test_a_dash_record_keeps_the_officers_entries(db: Database, settings: Settings) -> None:
    with db.session() as session:
        officer = add_user(session, "rvr1", Role.HANDLER, Role.RVR_OFFICER)
        incident = add_incident(session, officer, "CAD/RVR/D", category=DA)
        questions = dash.questions_for(settings)
        answers = {q.id: "not_known" for q in questions.items}
        record = dash.record(
            session, Actor("rvr1"), officer, incident, questions, answers, {}, "medium", 14
        )
        assert (record.yes_count, record.not_known_count, record.marac_referral) == (0, 27, False)
    with db.session() as session:
        incident = session.exec(select(Incident)).one()
        assert dash.latest(session, incident).risk_level == "medium"
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "incident.dash")).one()
        assert event.detail["marac_referral"] is False
