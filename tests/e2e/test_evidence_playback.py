"""Real browser: an evidence officer plays a sealed recording and seeks in it (range
requests answered 206, decrypted on the fly); a handler without rights gets 403 for
another's incident, and the attempt is in the audit trail."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Response, expect
from sqlmodel import select

from appliance.config import load_settings
from appliance.db import Database
from appliance.models import AuditEvent, FileKind, Role
from appliance.services.evidence import master_key, sealing
from tests.support import media_files
from tests.support.appliance import Appliance
from tests.support.staff import PASSWORD, add_incident, add_user


@pytest.fixture(scope="module")
def seeded(appliance: Appliance) -> Iterator[dict[str, int]]:
    """Two handlers, an evidence officer, and pc1's incident with a 20 s recording."""
    settings = load_settings(data_dir=appliance.data_dir)
    db = Database(settings.effective_database_url)
    with tempfile.TemporaryDirectory() as scratch:
        plain = media_files.webm(Path(scratch) / "call.webm", seconds=20)
    try:
        with db.session() as session:
            keyring = master_key.open_keyring(settings, session)
            owner = add_user(session, "pc1", Role.HANDLER)
            add_user(session, "pc2", Role.HANDLER)
            add_user(session, "do1", Role.EVIDENCE_OFFICER)
            incident = add_incident(session, owner, "CAD/E2E/EV")
            file = sealing.seal_bytes(
                session,
                keyring,
                settings.data_dir / "calls" / "seeded" / "recording-1.webm",
                plain,
                FileKind.RECORDING,
                incident.id or 0,
            )
            ids = {"incident": incident.id or 0, "file": file.id or 0}
        yield ids
    finally:
        db.dispose()


def sign_in(page: Page, appliance: Appliance, username: str) -> None:
    page.goto(appliance.base_url + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Welcome, Pat")).to_be_visible()


def test_an_evidence_officer_plays_and_seeks(
    browser: Browser, appliance: Appliance, seeded: dict[str, int]
) -> None:
    context = browser.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        sign_in(page, appliance, "do1")
        answers: list[Response] = []
        page.on(
            "response",
            lambda r: answers.append(r) if f"/evidence/{seeded['file']}" in r.url else None,
        )
        page.goto(f"{appliance.base_url}/incidents/{seeded['incident']}/evidence")
        video = page.locator(f"video[data-file='{seeded['file']}']")
        expect(video).to_be_visible()
        handle = video.element_handle()
        page.wait_for_function("v => v.readyState >= 1 && v.duration > 15", arg=handle)
        assert video.evaluate("v => v.currentTime") == 0
        video.evaluate(
            """v => new Promise((done, fail) => {
                v.addEventListener('seeked', done, {once: true});
                v.addEventListener('error', () => fail(v.error && v.error.message), {once: true});
                v.currentTime = 12.5;
            })"""
        )
        assert abs(video.evaluate("v => v.currentTime") - 12.5) < 0.6
        video.evaluate("v => v.play()")
        page.wait_for_function("v => v.currentTime > 12.9", arg=handle)
        assert any(r.status == 206 for r in answers), [r.status for r in answers]
        assert all(r.status in (200, 206) for r in answers), [r.status for r in answers]
    finally:
        context.close()


def test_a_handler_without_rights_is_refused_and_audited(
    browser: Browser, appliance: Appliance, seeded: dict[str, int]
) -> None:
    context = browser.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        sign_in(page, appliance, "pc2")
        response = page.goto(f"{appliance.base_url}/incidents/{seeded['incident']}/evidence")
        assert response is not None and response.status == 403
        response = page.goto(f"{appliance.base_url}/evidence/{seeded['file']}")
        assert response is not None and response.status == 403
    finally:
        context.close()
    db = Database(load_settings(data_dir=appliance.data_dir).effective_database_url)
    try:
        with db.session() as session:
            refused = session.exec(
                select(AuditEvent).where(AuditEvent.action == "evidence.refused")
            ).all()
            assert [(e.actor, e.object_type) for e in refused] == [
                ("pc2", "incident"),
                ("pc2", "evidence_file"),
            ]
    finally:
        db.dispose()
