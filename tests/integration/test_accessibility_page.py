"""The accessibility statement (/accessibility) in the public-sector model form, rendered
from appliance/data/accessibility.toml, and linked from every caller and guest page."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from appliance.models import Role
from appliance.services.audit import Actor
from appliance.services.calls import invites
from appliance.services.governance import accessibility
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import add_incident, add_user

pytestmark = pytest.mark.sqlite_only(
    reason="renders pages from a data file and the settings; the database only holds the link"
)

TEMPLATES = Path(accessibility.__file__).resolve().parents[2] / "templates"
LINK = re.compile(r'<footer class="footer">.*<a href="/accessibility(\?look=neutral)?"', re.S)


async def test_the_statement_has_the_model_forms_sections_and_says_what_the_file_says(
    live_server: LiveServer, caller: FormClient
) -> None:
    response, page = await caller.get("/accessibility")
    assert response.status == 200
    headings = re.findall(r"<h[23][^>]*>([^<]+)</h[23]>", page)
    for section in (
        "How accessible these pages are",
        "Reporting accessibility problems with these pages",
        "Enforcement procedure",
        "Compliance status",
        "Non-accessible content",
        "Preparation of this accessibility statement",
    ):
        assert section in headings, section
    statement = accessibility.statement()
    assert statement.not_meeting, "the data file lists known failures, so the page must"
    assert (
        "These pages are partially compliant with the Web Content Accessibility Guidelines "
        "version 2.2 AA standard, due to the non-compliances listed below."
    ) in page
    for item in statement.not_meeting:
        assert item.what.replace("'", "&#39;") in page
        for criterion in item.criteria:
            assert criterion in page
    for item in statement.tested:
        assert item.what.replace("'", "&#39;") in page
    assert statement.prepared.isoformat() in page
    assert live_server.settings.accessibility_contact.replace("'", "&#39;") in page
    assert "Equality and Human Rights Commission" in page


async def test_the_neutral_look_does_not_name_the_force(
    live_server: LiveServer, caller: FormClient
) -> None:
    """Tried: the link an RVR page carries (?look=neutral), with the default settings
    (the force is not named on RVR pages)."""
    force = live_server.settings.force_name
    _, plain = await caller.get("/accessibility")
    assert force in plain
    response, neutral = await caller.get("/accessibility?look=neutral")
    assert response.status == 200 and force not in neutral
    assert 'href="/accessibility?look=neutral"' in neutral


async def test_every_caller_and_guest_page_links_the_accessibility_statement(
    live_server: LiveServer, caller: FormClient
) -> None:
    """Every template a caller, a guest or a survey answerer sees extends caller/base.html,
    whose footer links the statement; tried on real pages: a caller's consent page, a
    dead caller link, a dead guest link, the privacy notice and the statement itself."""
    pages = sorted(
        path.relative_to(TEMPLATES).as_posix()
        for folder in ("caller", "guest", "survey")
        for path in (TEMPLATES / folder).glob("[!_]*.html")
        if path.name != "base.html"
    )
    assert len(pages) > 10
    for name in pages:
        assert (TEMPLATES / name).read_text().startswith('{% extends "caller/base.html" %}'), name

    with live_server.db.session() as session:
        officer = add_user(session, "pc9", Role.HANDLER)
        incident = add_incident(session, officer, "CAD/A11Y/1")
        _, _, token = invites.create_invite(
            session, Actor("pc9"), incident, officer, timedelta(hours=1)
        )
    for path, status in (
        (f"/v/{token}", 200),
        ("/v/no-such-link-at-all", 404),
        ("/g/no-such-guest-link", 404),
        ("/privacy", 200),
        ("/accessibility", 200),
    ):
        response, page = await caller.get(path, allow_redirects=False)
        assert response.status == status, path
        assert LINK.search(page), path
