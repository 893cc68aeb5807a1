"""The notice is always true: the consent pages and /privacy say what the settings say,
and the version a consent records is the hash of what was shown."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import select

from appliance.config import Settings
from appliance.models import Call, Invite, NoticeText, Role
from appliance.services.audit import Actor
from appliance.services.calls import invites
from appliance.services.governance import notice
from appliance.services.intake import incidents
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import add_incident, add_user

pytestmark = pytest.mark.sqlite_only(reason="templates and settings, not the database")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The box under test keeps recordings and uploads 90 days."""
    return settings.model_copy(
        update={
            "retention_days": 90,
            "controller_name": "The Chief Constable of Wessex Police",
            "dpo_contact": "dpo@wessex.police.example",
        }
    )


def test_the_version_changes_with_what_the_notice_says(settings: Settings) -> None:
    """Same settings, same version; a retention period or a processor changed, another;
    GOV.UK Notify is named as a processor when it sends the SMS."""
    page = notice.CONSENT_PAGES["video"]
    thirty = settings.model_copy(update={"retention_days": 30})
    notify = settings.model_copy(update={"notify_adapter": "govuk_notify"})
    assert [p.name for p in notice.of(settings).processors] == []
    assert "GOV.UK Notify" in notice.of(notify).processors[0].name
    versions = {notice.version(s, page) for s in (settings, thirty, notify)}
    assert len(versions) == 3
    assert notice.version(settings, page) == notice.version(settings.model_copy(), page)
    assert notice.version(settings, page) != notice.version(settings, page, neutral=True)


async def test_pages_say_ninety_days_and_consent_stores_their_hash(
    live_server: LiveServer, caller: FormClient
) -> None:
    """/privacy and the consent page of a link say 90 days, name the controller and the
    DPO, link to /privacy; the consent records the page's hash, and the text behind that
    hash is kept."""
    response, privacy = await caller.get("/privacy")
    assert response.status == 200
    assert "90 days after the call" in privacy
    assert "The Chief Constable of Wessex Police" in privacy
    assert "dpo@wessex.police.example" in privacy and "ico.org.uk" in privacy

    with live_server.db.session() as session:
        user = add_user(session, "pc1", Role.HANDLER)
        incident = add_incident(session, user, "CAD/NOTICE/1")
        incidents.record_eligibility(
            session, Actor("pc1"), user, incident, ["ok"], [True], settings=live_server.settings
        )
        _, _, token = invites.create_invite(
            session, Actor("pc1"), incident, user, timedelta(hours=1)
        )
    _, page = await caller.get(f"/v/{token}")
    shown = notice.version(live_server.settings, notice.CONSENT_PAGES["video"])
    assert "deleted after 90 days" in page and "30 days" not in page
    assert f"Notice version {shown}" in page
    assert 'href="/privacy"' in page
    response, _ = await caller.post(f"/v/{token}", {"consent_video": "yes"})
    assert response.status == 303
    _, call_page = await caller.get(f"/v/{token}/call")
    assert 'href="/privacy"' in call_page, "every caller page links the notice"
    with live_server.db.session() as session:
        invite = session.exec(
            select(Invite).where(Invite.token_hash == invites.hash_token(token))
        ).one()
        call = session.exec(select(Call).where(Call.invite_id == invite.id)).one()
        assert call.notice_version == shown
        assert re.fullmatch(r"[0-9a-f]{32}", call.notice_version)
        kept = session.get(NoticeText, shown)
        assert kept is not None, "what the version said is kept with the first consent"
        assert kept.facts["days"]["recording"] == 90
        assert "notice.days.recording" in kept.template and "notice.controller" in kept.partial
