"""The caller's pages in the caller's language (appliance/i18n.py), over real HTTPS: every
page and state in the pseudo-locale shows no text that skipped the catalogue; a Welsh
link shows no English; an Arabic one runs right to left and shows no English either."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from sqlmodel import select

from appliance import i18n
from appliance.models import AuditEvent, Call, Invite, NoticeText, OutboundMessage, Role, User
from appliance.services.audit import Actor
from appliance.services.calls import invites, life, states
from appliance.services.calls.invites import LOCATION, UPLOAD, VIDEO
from appliance.services.governance import accessibility, notice
from appliance.services.intake import incidents
from tests.support.http import FormClient
from tests.support.languages import english_shown, read, script_messages, untranslated
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_incident, add_user

pytestmark = pytest.mark.sqlite_only(reason="templates and catalogues, not the database")

ACTOR = Actor("t")


def _link(server: LiveServer, reference: str, language: str, kind: str = VIDEO) -> str:
    with server.db.session() as session:
        user = session.exec(select(User).where(User.username == "pc1")).first() or add_user(
            session, "pc1", Role.HANDLER
        )
        incident = add_incident(session, user, reference)
        _, _, token = invites.create_invite(
            session, ACTOR, incident, user, timedelta(hours=1), kind=kind, language=language
        )
    return token


def _invite(server: LiveServer, token: str) -> tuple[Invite, Call]:
    with server.db.session() as session:
        invite = session.exec(
            select(Invite).where(Invite.token_hash == invites.hash_token(token))
        ).one()
        call = session.exec(select(Call).where(Call.invite_id == invite.id)).one()
        session.expunge_all()
        return invite, call


async def _pages(server: LiveServer, caller: FormClient, language: str) -> dict[str, str]:
    """Every caller page and state reachable without a browser, by name."""
    seen: dict[str, str] = {}

    async def get(name: str, path: str, status: int = 200) -> None:
        response, seen[name] = await caller.get(path)
        assert response.status == status, (name, response.status)

    async def post(name: str, path: str, form: dict[str, str], status: int) -> None:
        response, seen[name] = await caller.post(path, form, allow_redirects=False)
        assert response.status == status, (name, response.status)

    video = _link(server, "CAD/L/1", language)
    await get("consent", f"/v/{video}")
    # The privacy notice and the accessibility statement, as the consent page links them.
    for name in ("privacy", "accessibility"):
        [href] = set(re.findall(f'href="(/{name}[^"]*)"', seen["consent"]))
        await get(name, html.unescape(href))
    await post("consent unanswered", f"/v/{video}", {}, 400)
    await post("consent declined", f"/v/{video}", {"consent_video": "no"}, 400)
    await caller.post(f"/v/{video}", {"consent_video": "yes"}, allow_redirects=False)
    await get("call", f"/v/{video}/call")
    await get("survey too early", f"/v/{video}/survey", 409)
    _, ended = _invite(server, video)
    with server.db.session() as session:
        call = session.get(Call, ended.id) or ended
        user = session.exec(select(User).where(User.username == "pc1")).one()
        states.caller_waiting(session, call, "t")
        life.admit(session, server.settings, call, user, "t")
        life.end(session, server.settings, call, ACTOR, "handler_ended")
    await get("finished", f"/v/{video}", 410)
    await get("survey", f"/v/{video}/survey")
    await post("survey refused", f"/v/{video}/survey", {"handling": "4"}, 400)
    await post("survey answered", f"/v/{video}/survey", {"handling": "4", "outcome": "4"}, 200)

    upload = _link(server, "CAD/L/2", language, UPLOAD)
    await get("upload consent", f"/v/{upload}")
    await post("upload consent declined", f"/v/{upload}", {}, 400)
    await caller.post(f"/v/{upload}", {"consent": "yes"}, allow_redirects=False)
    await get("upload", f"/v/{upload}/upload")
    await post("upload finished", f"/v/{upload}/finish", {}, 200)

    location = _link(server, "CAD/L/3", language, LOCATION)
    await get("location consent", f"/v/{location}")
    await caller.post(f"/v/{location}", {"consent": "yes"}, allow_redirects=False)
    await get("location", f"/v/{location}/location")
    await post("location refused", f"/v/{location}/location", {}, 400)
    await post(
        "location shared",
        f"/v/{location}/location",
        {"latitude": "51.5", "longitude": "-0.1", "accuracy": "20"},
        200,
    )

    revoked = _link(server, "CAD/L/4", language)
    _, call = _invite(server, revoked)
    with server.db.session() as session:
        life.revoke(session, server.settings, ACTOR, session.get(Call, call.id) or call)
    await get("revoked", f"/v/{revoked}", 410)
    return seen


async def test_every_caller_page_in_the_pseudo_locale_shows_only_translated_text(
    live_server: LiveServer, caller: FormClient
) -> None:
    """Each page and state above, in the pseudo-locale, carries no Latin word outside a
    translated message but the data it shows (the force's name, the officer's name, the
    reference, the operator's notice settings); its scripts' messages are all translated;
    and the check itself finds an English sentence slipped into a page."""
    pages = await _pages(live_server, caller, i18n.PSEUDO)
    data = _data(live_server)
    for name, page in pages.items():
        assert untranslated(page, data) == [], name
        assert read(page).html_attrs.get("lang") == i18n.PSEUDO, name
        messages = script_messages(page)
        assert messages and all(v.startswith(i18n.PSEUDO_OPEN) for v in messages.values())
    slipped = pages["consent"].replace("</main>", "<p>Call us again.</p></main>")
    assert untranslated(slipped, data) == ["Call", "us", "again"]


def _data(server: LiveServer) -> tuple[str, ...]:
    """What a caller's page shows as given: the force's and the officer's names, the
    references, the operator's notice settings."""
    facts = notice.of(server.settings)
    shown = accessibility.statement()
    return (
        server.settings.force_name,
        "Pat",
        *(f"CAD/L/{n}" for n in range(1, 6)),
        facts.controller,
        facts.dpo_contact,
        *(p.name for p in facts.processors),
        *(p.does for p in facts.processors),
        *(language.name for language in i18n.LANGUAGES.values()),  # the switch's buttons
        # The accessibility statement's dates, in the pseudo-locale's (English) month names.
        *(i18n.long_date(i18n.PSEUDO, day) for day in (shown.prepared, shown.reviewed)),
    )


async def test_a_welsh_link_shows_no_english(live_server: LiveServer, caller: FormClient) -> None:
    """Every page and state of a Welsh link carries lang="cy", shows none of the English
    source of a message the catalogue translates, and gives its scripts Welsh; the SMS
    invite is in Welsh. The check finds English put back into a page."""
    pages = await _pages(live_server, caller, "cy")
    for name, page in pages.items():
        assert read(page).html_attrs.get("lang") == "cy", name
        assert english_shown(" ".join(read(page).parts), "cy", _data(live_server)) == [], name
        assert script_messages(page)["Connected"] == "Wedi cysylltu"
    assert "Parhau" in pages["consent"] and "Ydych chi'n cytuno" in pages["consent"]
    english = pages["consent"].replace("Parhau", "Continue")
    assert english_shown(" ".join(read(english).parts), "cy", _data(live_server)) == ["Continue"]

    with live_server.db.session() as session:
        user = session.exec(select(User).where(User.username == "pc1")).one()
        incident = add_incident(session, user, "CAD/L/9")
        _, message, _ = invites.create_sms_invite(
            session, ACTOR, incident, user, live_server.settings, True, language="cy"
        )
        assert message.body.startswith(f"{live_server.settings.force_name}: dyma'r ddolen ar gyfer")


async def test_an_arabic_link_runs_right_to_left_and_shows_no_english(
    live_server: LiveServer, caller: FormClient
) -> None:
    """Every page and state of an Arabic link is dir="rtl" lang="ar" and shows none of the
    English source of a message the catalogue translates; its scripts get Arabic."""
    pages = await _pages(live_server, caller, "ar")
    for name, page in pages.items():
        assert read(page).html_attrs == {"lang": "ar", "dir": "rtl"}, name
        assert english_shown(" ".join(read(page).parts), "ar", _data(live_server)) == [], name
        assert script_messages(page)["Connected"] == i18n.gettext("ar", "Connected") != "Connected"
    assert "هل توافق على مكالمة فيديو مع الشرطة؟" in pages["consent"]
    assert ">متابعة<" in pages["consent"]


async def test_the_handler_chooses_the_language_and_the_caller_can_switch(
    live_server: LiveServer, caller: FormClient
) -> None:
    """The handler sends a link in Welsh from the incident page; the console says
    Cymraeg; the caller switches to English on the page (audited) and lands back on the
    same page in English; a language not offered is refused."""
    with live_server.db.session() as session:
        user = add_user(session, "pc1", Role.HANDLER)
        incident = add_incident(session, user, "CAD/L/6")
        incidents.set_eligibility(session, ACTOR, user, incident, ["ok"], [True])
        incident_id = incident.id
    staff = FormClient(live_server.base_url)
    try:
        await staff.sign_in("pc1", PASSWORD)
        _, page = await staff.get(f"/incidents/{incident_id}")
        assert '<option value="cy">Cymraeg</option>' in page
        assert '<option value="ar">العربية</option>' in page
        form = {"channel": "link", "kind": "video"}
        response, _ = await staff.post(
            f"/incidents/{incident_id}/invites", {**form, "language": "xx"}
        )
        assert response.status == 400
        response, _ = await staff.post(
            f"/incidents/{incident_id}/invites", {**form, "language": "cy"}
        )
        assert response.status == 303
        _, page = await staff.get(f"/incidents/{incident_id}")
        found = re.search(r"/v/([A-Za-z0-9_-]{43})", page)
        assert found, page
        token = found.group(1)
        invite, call = _invite(live_server, token)
        assert invite.language == "cy"
        response, page = await staff.get(f"/calls/{call.public_id}")
        assert response.status == 200 and 'id="caller-language" lang="cy">Cymraeg<' in page
    finally:
        await staff.close()

    _, page = await caller.get(f"/v/{token}")
    assert 'lang="cy"' in page and 'name="language" value="en"' in page
    response, _ = await caller.post(
        f"/v/{token}/language", {"language": "en", "back": f"/v/{token}"}
    )
    assert response.status == 303 and response.headers["Location"] == f"/v/{token}"
    _, page = await caller.get(f"/v/{token}")
    assert '<html lang="en-GB"' in page and ">Continue<" in page
    with live_server.db.session() as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "invite.language")).one()
        assert event.detail["from"] == "cy" and event.detail["to"] == "en"
    response, _ = await caller.post(
        f"/v/{token}/language", {"language": i18n.PSEUDO, "back": "//evil.test/"}
    )
    assert response.headers["Location"] == f"/v/{token}"
    assert _invite(live_server, token)[0].language == "en"  # the pseudo-locale is never offered


async def test_a_welsh_consent_keeps_the_welsh_notice_it_was_given(
    live_server: LiveServer, caller: FormClient
) -> None:
    """The notice version a Welsh consent records is not the English one, and the text
    kept for it holds the language and the Welsh the caller read."""
    token = _link(live_server, "CAD/L/7", "cy")
    _, page = await caller.get(f"/v/{token}")
    response, _ = await caller.post(f"/v/{token}", {"consent_video": "yes"})
    assert response.status == 303
    _, call = _invite(live_server, token)
    english = notice.version(live_server.settings, notice.CONSENT_PAGES[VIDEO])
    assert call.notice_version != english and call.notice_version in page
    with live_server.db.session() as session:
        kept = session.get(NoticeText, call.notice_version)
        assert kept is not None and kept.facts["language"] == "cy"
        assert kept.facts["translations"]["Your information"] == "Eich gwybodaeth"
        assert kept.facts["translations"]["Continue"] == "Parhau"


async def test_the_survey_sms_and_its_page_follow_the_calls_language(
    live_server: LiveServer, caller: FormClient
) -> None:
    """A Welsh call that connected and ended is followed by a Welsh survey SMS, whose
    link opens the questions in Welsh, refusals included."""
    with live_server.db.session() as session:
        user = add_user(session, "pc1", Role.HANDLER)
        incident = add_incident(session, user, "CAD/L/8")
        incidents.set_eligibility(session, ACTOR, user, incident, ["ok"], [True])
        incident_id = incident.id
        _, call, token = invites.create_invite(
            session, ACTOR, incident, user, timedelta(hours=1), language="cy"
        )
    await caller.get(f"/v/{token}")
    await caller.post(f"/v/{token}", {"consent_video": "yes"})
    with live_server.db.session() as session:
        ended = session.get(Call, call.id)
        assert ended is not None
        states.caller_waiting(session, ended, "t")
        life.admit(session, live_server.settings, ended, session.get(User, user.id), "t")
        life.end(session, live_server.settings, ended, ACTOR, "handler_ended")
        message = session.exec(
            select(OutboundMessage).where(OutboundMessage.incident_id == incident_id)
        ).one()
    assert "dywedwch wrthym sut gwnaethom ni" in message.body
    found = re.search(r"/s/([A-Za-z0-9_-]{43})", message.body)
    assert found
    response, page = await caller.get(f"/s/{found.group(1)}")
    assert response.status == 200 and 'lang="cy"' in page and "Sut gwnaethom ni?" in page
    response, page = await caller.post(f"/s/{found.group(1)}", {"handling": "4"})
    assert response.status == 400 and "Heb ei anfon: dewiswch ateb o 1 i 5" in page


async def test_the_privacy_notice_and_the_accessibility_statement_open_in_the_callers_language(
    live_server: LiveServer, caller: FormClient
) -> None:
    """Tried: the footer links of a Welsh and of an English consent page, the pages they
    open, each page's links to the other languages, the neutral look kept through them,
    a language nobody offers, and the privacy notice's version per language. (Every
    word of both pages in each language is held by the tests above.)"""
    welsh = _link(live_server, "CAD/L/10", "cy")
    english = _link(live_server, "CAD/L/11", "en")
    _, page = await caller.get(f"/v/{welsh}")
    assert 'href="/privacy?lang=cy"' in page and 'href="/accessibility?lang=cy"' in page
    _, page = await caller.get(f"/v/{english}")
    assert 'href="/privacy"' in page and 'href="/accessibility"' in page  # the box's default

    _, statement = await caller.get("/accessibility?lang=cy")
    assert read(statement).html_attrs == {"lang": "cy", "dir": "ltr"}
    assert "<h1>Datganiad hygyrchedd</h1>" in statement
    prepared = accessibility.statement().prepared
    assert f'<time datetime="{prepared.isoformat()}">{i18n.long_date("cy", prepared)}</time>' in (
        statement
    )
    # The other languages, each a plain link: English is the box's default, so it is bare.
    assert 'href="/accessibility" lang="en-GB" hreflang="en-GB">English<' in statement
    assert 'href="/accessibility?lang=ar" lang="ar" hreflang="ar">العربية<' in statement
    assert 'hreflang="cy"' not in statement

    _, notice_ar = await caller.get("/privacy?lang=ar")
    assert read(notice_ar).html_attrs == {"lang": "ar", "dir": "rtl"}
    assert "<h1>كيف تُستخدم معلوماتك</h1>" in notice_ar
    versions = {
        code: notice.version(live_server.settings, notice.PRIVACY_PAGE, False, code)
        for code in ("en", "ar")
    }
    assert versions["ar"] != versions["en"] and versions["ar"] in notice_ar

    _, neutral = await caller.get("/privacy?look=neutral&lang=cy")
    assert 'href="/privacy?look=neutral&amp;lang=ar"' in neutral
    assert 'href="/privacy?look=neutral" lang="en-GB"' in neutral
    assert live_server.settings.force_name not in neutral

    response, unknown = await caller.get("/privacy?lang=xx")
    assert response.status == 200 and '<html lang="en-GB" dir="ltr">' in unknown


async def test_the_processors_are_named_in_the_callers_language(
    live_server: LiveServer, caller: FormClient
) -> None:
    """Tried: GOV.UK Notify sending the SMS and a TURN relay (the settings the notice reads
    at each request), on a Welsh consent page and the Welsh and Arabic privacy notices:
    each says who they are and what they do in the language, and no English of it shows;
    the relay's host stays as written."""
    live_server.settings.notify_adapter = "govuk_notify"
    live_server.settings.turn_urls = ["turn:relay.wessex.example:3478?transport=udp"]
    processors = notice.of(live_server.settings).processors
    assert len(processors) == 2
    _, consent = await caller.get(f"/v/{_link(live_server, 'CAD/L/12', 'cy')}")
    _, welsh = await caller.get("/privacy?lang=cy")
    _, arabic = await caller.get("/privacy?lang=ar")
    assert "Cyfnewidfa cyfryngau (relay.wessex.example)" in welsh
    assert "Swyddfa'r Cabinet" in consent and "Swyddfa'r Cabinet" in welsh
    assert "مُرحِّل الوسائط (relay.wessex.example)" in arabic
    for code, page in (("cy", consent), ("cy", welsh), ("ar", arabic)):
        english = english_shown(
            " ".join(read(page).parts), code, (live_server.settings.force_name,)
        )
        assert english == [], (code, english)
