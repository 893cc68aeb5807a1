"""The caller's pages in the caller's language (appliance/i18n.py), over real HTTPS: every
page and state in the pseudo-locale shows no text that skipped the catalogue; a Welsh
link shows no English; an Arabic one runs right to left."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from appliance import i18n
from appliance.models import Call, Invite, Role, User
from appliance.services.audit import Actor
from appliance.services.calls import invites, life, states
from appliance.services.calls.invites import LOCATION, UPLOAD, VIDEO
from appliance.services.governance import notice
from tests.support.http import FormClient
from tests.support.languages import read, script_messages, untranslated
from tests.support.live import LiveServer
from tests.support.staff import add_incident, add_user

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
    settings = live_server.settings
    notice_data = tuple(
        value
        for value in (settings.force_name, "Pat", *(f"CAD/L/{n}" for n in range(1, 5)))
        if value
    )
    pages = await _pages(live_server, caller, i18n.PSEUDO)
    facts = notice.of(settings)
    data = (
        *notice_data,
        facts.controller,
        facts.dpo_contact,
        *(p.name for p in facts.processors),
        *(p.does for p in facts.processors),
    )
    for name, page in pages.items():
        assert untranslated(page, data) == [], name
        assert read(page).html_attrs.get("lang") == i18n.PSEUDO, name
        messages = script_messages(page)
        assert messages and all(v.startswith(i18n.PSEUDO_OPEN) for v in messages.values())
    slipped = pages["consent"].replace("</main>", "<p>Call us again.</p></main>")
    assert untranslated(slipped, data) == ["Call", "us", "again"]
