"""Staff pages that lead somewhere: the incident page's next step and its one live link,
the paged incident list, UK time on every page, and home tiles with counts."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from appliance.models import AuditEvent, Call, CallState, EvidenceFile, Incident, Invite, Role
from appliance.services.audit import Actor
from appliance.services.calls import invites, life, states
from appliance.services.calls.invites import Consent
from appliance.services.evaluation import trial
from appliance.services.identity import accounts
from appliance.services.intake import incidents
from appliance.web.files import evidence_label, media_label
from appliance.web.staff import incidents as incident_pages
from appliance.web.toolkit import uk_time
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_incident, add_user

LINK_RE = re.compile(r'id="invite-link"[^>]*value="([^"]+)"')


@pytest.fixture
async def handler(live_server: LiveServer) -> AsyncIterator[FormClient]:
    """pc1, a handler, signed in; their incident CAD/P/1 answered eligible."""
    with live_server.db.session() as session:
        user = add_user(session, "pc1", Role.HANDLER)
        incident = add_incident(session, user, "CAD/P/1")
        questions = live_server.settings.eligibility_questions
        incidents.set_eligibility(
            session, Actor("pc1"), user, incident, questions, [True] * len(questions)
        )
    client = FormClient(live_server.base_url)
    await client.sign_in("pc1", PASSWORD)
    try:
        yield client
    finally:
        await client.close()


def _incident_id(server: LiveServer, reference: str = "CAD/P/1") -> int:
    with server.db.reader() as session:
        found = session.exec(select(Incident).where(Incident.cad_reference == reference)).one()
        return found.id or 0


async def _make_link(client: FormClient, incident_id: int) -> str:
    """Press "Create video call link" and read the link off the page redirected to."""
    await client.get(f"/incidents/{incident_id}")
    response, _ = await client.post(
        f"/incidents/{incident_id}/invites", {"channel": "link", "kind": "video"}
    )
    assert response.status == 303
    _, page = await client.get(f"/incidents/{incident_id}")
    found = LINK_RE.search(page)
    assert found, "the new link is shown on the incident page"
    return html.unescape(found.group(1))


def _path(link: str) -> str:
    """The link's path: the server under test answers on loopback, not the public URL."""
    return "/v/" + link.rsplit("/v/", 1)[1]


async def test_a_second_press_replaces_the_unused_link_and_the_old_one_stops_working(
    live_server: LiveServer, handler: FormClient, caller: FormClient
) -> None:
    """Two presses of "Create video call link" before the caller opens anything: one live
    link, the newer; the first is revoked (audited) and its page says it is no longer in
    use, while the new one opens."""
    incident_id = _incident_id(live_server)
    first = await _make_link(handler, incident_id)
    second = await _make_link(handler, incident_id)
    assert first != second

    with live_server.db.reader() as session:
        calls = states.for_incident(session, incident_id)
        live = [c for c in calls if c.state == CallState.INVITED.value]
        assert len(calls) == 2 and len(live) == 1
        revoked = session.exec(select(AuditEvent).where(AuditEvent.action == "invite.revoked"))
        assert [e.object_id for e in revoked.all()] == [
            c.public_id for c in calls if c.state == CallState.CANCELLED.value
        ]

    response, page = await caller.get(_path(first))
    assert response.status == 410 and "no longer in use" in page
    response, _ = await caller.get(_path(second))
    assert response.status == 200


async def test_a_link_the_caller_has_opened_is_not_replaced_without_asking(
    live_server: LiveServer, handler: FormClient, caller: FormClient
) -> None:
    """Once the caller has opened the link, a second press is refused with the reason
    (revoke it first): the caller on their way in is never cut off, and there is still
    one live link."""
    incident_id = _incident_id(live_server)
    first = await _make_link(handler, incident_id)
    response, _ = await caller.get(_path(first))
    assert response.status == 200

    await handler.get(f"/incidents/{incident_id}")
    response, page = await handler.post(
        f"/incidents/{incident_id}/invites", {"channel": "link", "kind": "video"}
    )
    assert response.status == 409 and "revoke it first" in page
    with live_server.db.reader() as session:
        assert len(states.for_incident(session, incident_id)) == 1


async def test_the_incident_page_names_the_next_step_and_folds_finished_ones(
    live_server: LiveServer, handler: FormClient
) -> None:
    """The header says the status and the next step; the answered checklist is one line
    with "Change"; after a connected call the next step is the outcome and the long
    sections start folded."""
    incident_id = _incident_id(live_server)
    _, page = await handler.get(f"/incidents/{incident_id}")
    assert 'id="incident-status">open<' in page
    assert "Next:</strong> Send the caller a video call link" in page
    assert re.search(r'<details class="card step-done" id="eligibility-step">\s*<summary>', page)
    assert "Eligibility: <strong>eligible</strong>" in page and ">Change<" in page

    with live_server.db.session() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        owner = accounts.require(session, "pc1")
        _, _, token = invites.create_invite(
            session, Actor("pc1"), incident, owner, timedelta(hours=1)
        )
        call = invites.open_link(session, token, "phone", "")
        assert isinstance(call, Call)
        invites.record_consent(session, call, Consent(True, False, False), "phone", "")
        states.caller_waiting(session, call, "")
        call_id = call.id
    _, page = await handler.get(f"/incidents/{incident_id}")
    assert "Next:</strong> The caller is waiting: open the call and admit them." in page
    assert re.search(r'<details class="fold" open>', page)

    with live_server.db.session() as session:
        call = session.get(Call, call_id)
        assert call is not None
        life.admit(session, live_server.settings, call, owner, "")
        life.end(session, live_server.settings, call, Actor("pc1"), "handler_ended")
    _, page = await handler.get(f"/incidents/{incident_id}")
    assert "Next:</strong> The call has ended: record THRIVE, notes and the outcome." in page
    assert re.search(r'<details class="card fold" aria-labelledby="timeline-heading"\s*>', page)
    assert re.search(r'<details class="fold"\s*>', page), "the ended call's row folded"

    # A new link after the call: the links stay open, so its Revoke link is at hand.
    await _make_link(handler, incident_id)
    _, page = await handler.get(f"/incidents/{incident_id}")
    assert re.search(r'<details class="fold" open>', page) and "Revoke link" in page


SUMMER = datetime(2026, 6, 30, 9, 0, tzinfo=UTC)


async def test_an_incident_in_the_trials_in_person_arm_offers_no_send_link(
    live_server: LiveServer,
) -> None:
    """A supervisor's trial allocates incidents until one lands in the usual (in-person)
    arm: its page offers neither "Send link by SMS" nor "Create video call link", and says
    why; the video arm's incident still offers both. The in-person visit's time is
    typed as UK time."""
    with live_server.db.session() as session:
        boss = add_user(session, "sup1", Role.SUPERVISOR, Role.HANDLER)
        trial.start(session, Actor("sup1"), boss, live_server.settings, seed=5)
        questions = live_server.settings.eligibility_questions
        by_arm: dict[str, int] = {}
        n = 0
        while len(by_arm) < 2:
            incident = add_incident(session, boss, f"CAD/TR/{n}", received_at=SUMMER)
            incidents.set_eligibility(
                session, Actor("sup1"), boss, incident, questions, [True] * len(questions)
            )
            trial.record_consent(session, Actor("sup1"), boss, incident, True)
            by_arm.setdefault(trial.reveal(session, Actor("sup1"), boss, incident), incident.id)
            n += 1
    client = FormClient(live_server.base_url)
    await client.sign_in("sup1", PASSWORD)
    try:
        _, usual = await client.get(f"/incidents/{by_arm['usual']}")
        _, video = await client.get(f"/incidents/{by_arm['video']}")
        # The visit's time is typed as UK time: 14:30 on a July day is 13:30 UTC.
        await client.get(f"/incidents/{by_arm['usual']}/trial")
        response, _ = await client.post(
            f"/incidents/{by_arm['usual']}/trial",
            {"step": "in_person", "outcome": "advice_given", "at": "2026-07-01T14:30"},
        )
        assert response.status == 303
        _, trial_page = await client.get(f"/incidents/{by_arm['usual']}/trial")
    finally:
        await client.close()
    with live_server.db.reader() as session:
        allocation = trial.allocation_of(session, session.get(Incident, by_arm["usual"]))
        assert allocation is not None and allocation.in_person_at is not None
        assert allocation.in_person_at.astimezone(UTC) == datetime(2026, 7, 1, 13, 30, tzinfo=UTC)
    assert "2026-07-01 14:30 BST" in trial_page
    assert 'id="video-held"' in usual and "usual-response arm" in usual
    assert "<strong>an officer attends in person</strong>" in usual
    assert "the caller agreed; <strong>video response</strong>" in video
    assert "Send link by SMS" not in usual and "Create video call link" not in usual
    assert "Send link by SMS" in video and "Create video call link" in video


async def test_the_incident_list_is_paged_in_a_stable_order(
    live_server: LiveServer, handler: FormClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seven more incidents received at the very same instant, pages of three: every
    incident on exactly one page, newest (then highest id) first, page links between
    them, and "New incident" above the list."""
    monkeypatch.setattr(incident_pages, "PAGE_SIZE", 3)
    same = datetime(2026, 7, 1, 9, 30, tzinfo=UTC)
    with live_server.db.session() as session:
        owner = accounts.require(session, "pc1")
        for n in range(7):
            add_incident(session, owner, f"CAD/PG/{n}", received_at=same)
    seen: list[str] = []
    for number in (1, 2, 3):
        response, page = await handler.get(f"/incidents?page={number}")
        assert response.status == 200
        rows = re.findall(r'<a href="/incidents/\d+">(CAD/[^<]+)</a>', page)
        assert len(rows) == (3 if number < 3 else 2)
        seen += rows
        assert f'<span aria-current="page">{number}</span>' in page
        assert page.index('id="new-incident"') < page.index('id="q"')
    assert sorted(seen) == sorted([f"CAD/PG/{n}" for n in range(7)] + ["CAD/P/1"])
    ties = [ref for ref in seen if ref.startswith("CAD/PG/")]
    assert ties == [f"CAD/PG/{n}" for n in reversed(range(7))]
    # Past the last page: the last page, not an empty one; and the filter is kept.
    _, page = await handler.get("/incidents?page=99")
    assert '<span aria-current="page">3</span>' in page
    _, page = await handler.get("/incidents?q=CAD%2FPG&page=1")
    assert 'href="?q=CAD%2FPG&amp;page=2"' in page
    assert "01 Jul 2026 10:30 BST" in page


@pytest.mark.parametrize(
    ("at", "shown"),
    [
        (datetime(2026, 7, 1, 12, 0, tzinfo=UTC), "2026-07-01 13:00 BST"),
        (datetime(2026, 12, 1, 12, 0, tzinfo=UTC), "2026-12-01 12:00 GMT"),
        # The clocks go forward at 01:00 UTC on the last Sunday of March.
        (datetime(2026, 3, 29, 0, 59, tzinfo=UTC), "2026-03-29 00:59 GMT"),
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "2026-03-29 02:00 BST"),
        (datetime(2026, 7, 1, 12, 0), "2026-07-01 13:00 BST"),  # no zone: taken as UTC
    ],
)
def test_the_time_filter_gives_bst_in_summer_and_gmt_in_winter(at: datetime, shown: str) -> None:
    assert uk_time(at, "%Y-%m-%d %H:%M") == shown


def test_a_day_alone_is_the_uk_day_without_a_zone() -> None:
    """23:30 UTC on 30 June is already 1 July in London."""
    assert uk_time(datetime(2026, 6, 30, 23, 30, tzinfo=UTC), "%Y-%m-%d") == "2026-07-01"


@pytest.mark.parametrize(
    ("kind", "path", "label"),
    [
        ("statement", "incidents/1/statement-3.pdf", "Signed statement (PDF)"),
        ("snapshot", "incidents/1/snapshot-2.jpg", "Snapshot (JPEG)"),
        ("recording", "incidents/1/recording-1.webm", "Recording (WebM)"),
        ("upload", "incidents/1/upload-4.heic", "Photo or video from the caller (HEIC)"),
    ],
)
def test_evidence_items_have_plain_labels(kind: str, path: str, label: str) -> None:
    assert (
        evidence_label(EvidenceFile(kind=kind, incident_id=1, path=path, master_key_id="k"))
        == label
    )


@pytest.mark.parametrize(
    ("mime", "label"),
    [
        ("image/jpeg", "Photo (JPEG)"),
        ("video/quicktime", "Video (MOV)"),
        ("image/heic", "Photo (HEIC)"),
    ],
)
def test_uploads_have_plain_labels(mime: str, label: str) -> None:
    assert media_label(mime) == label


def _tile_counts(page: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-count="(\w+)"><b>(\d+)</b>', page)}


async def test_home_tiles_count_what_each_role_has_waiting(live_server: LiveServer) -> None:
    """A handler's tiles count the callers waiting on what they may see, their own open
    incidents and untaken ones; an evidence officer's count reviews due and legal holds
    (deleted items not counted); an admin's, the role grants awaiting a second admin."""
    now = datetime.now(UTC)
    with live_server.db.session() as session:
        pc = add_user(session, "pc1", Role.HANDLER)
        other = add_user(session, "pc2", Role.HANDLER)
        add_user(session, "eo1", Role.EVIDENCE_OFFICER)
        admin = add_user(session, "adm1", Role.ADMIN)
        mine = [add_incident(session, pc, f"CAD/H/{n}") for n in range(2)]
        theirs = add_incident(session, other, "CAD/H/9")
        add_incident(session, None, "CAD/H/CAD", source="api:cad")
        for incident in (mine[0], theirs):  # a caller waiting on each; pc1 sees one
            _, _, token = invites.create_invite(
                session, Actor("t"), incident, pc, timedelta(hours=1)
            )
            opened = invites.open_link(session, token, "phone", "")
            assert isinstance(opened, Call)
            invites.record_consent(session, opened, Consent(True, False, False), "phone", "")
            states.caller_waiting(session, opened, "")
        for n, (review, hold, deleted) in enumerate(
            [(now - timedelta(days=1), False, None), (None, True, None), (now, True, now)]
        ):
            session.add(
                EvidenceFile(
                    kind="snapshot",
                    incident_id=mine[1].id or 0,
                    path=f"incidents/x/snapshot-{n}.jpg",
                    master_key_id="k",
                    review_at=review,
                    legal_hold=hold,
                    deleted_at=deleted,
                )
            )
        add_user(session, "new9", Role.HANDLER)
        held = accounts.set_roles(
            session, Actor("adm1"), "new9", {Role.HANDLER, Role.ADMIN}, hold_privileged=True
        )
        assert held == {Role.ADMIN} and admin.id
    expected = {
        "pc1": {"waiting": 1, "mine": 2, "untaken": 1},
        "eo1": {"reviews_due": 1, "legal_holds": 1},
        "adm1": {"grants": 1, "sms_failed": 0, "cad_failed": 0},
    }
    for username, counts in expected.items():
        client = FormClient(live_server.base_url)
        await client.sign_in(username, PASSWORD)
        try:
            _, page = await client.get("/")
        finally:
            await client.close()
        assert _tile_counts(page) == counts, username


async def test_staff_pages_show_uk_time_and_plain_events(
    live_server: LiveServer, handler: FormClient
) -> None:
    """The audit trail (read by an auditor) says events in words beside their code and
    times with GMT or BST; no staff page heads a column "(UTC)"."""
    with live_server.db.session() as session:
        add_user(session, "aud1", Role.AUDITOR)
    auditor = FormClient(live_server.base_url)
    await auditor.sign_in("aud1", PASSWORD)
    try:
        _, page = await auditor.get("/audit")
    finally:
        await auditor.close()
    assert "Incident created<br><code" in page
    assert re.search(r"\d{2}:\d{2}:\d{2} (GMT|BST)</time>", page)
    _, incident_page = await handler.get(f"/incidents/{_incident_id(live_server)}")
    _, listing = await handler.get("/incidents")
    for shown in (page, incident_page, listing):
        assert "(UTC)" not in shown
    with live_server.db.reader() as session:
        assert session.exec(select(Invite)).all() == []


@pytest.mark.sqlite_only(reason="a page attribute from a setting; the engine plays no part")
async def test_staff_pages_ask_as_often_as_the_box_says(
    live_server: LiveServer, handler: FormClient
) -> None:
    """The default five seconds, then a force's own period, reach every staff page's
    scripts (refresh.js, waiting.js and queue.js read it from the body)."""
    _, page = await handler.get("/my")
    assert 'data-refresh-seconds="5.0"' in page
    live_server.settings.staff_refresh_seconds = 2.5
    for path in ("/my", "/calls", "/incidents"):
        _, page = await handler.get(path)
        assert 'data-refresh-seconds="2.5"' in page, path
