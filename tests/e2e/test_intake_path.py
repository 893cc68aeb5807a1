"""The whole path, as a control room works it: CAD → queue → eligibility → a booked slot
with its SMS (outbox) → the caller's link → the call."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Route, expect
from sqlmodel import col, select

from appliance.config import load_settings
from appliance.db import Database
from appliance.models import Call, Incident, Invite
from appliance.services.audit import Actor
from appliance.services.calls import life, states
from appliance.services.identity import accounts
from appliance.services.record import statements
from appliance.services.record.statements import Witness
from tests.support import media_files
from tests.support.appliance import Appliance, running_appliance
from tests.support.axe import assert_accessible
from tests.support.browser import (
    answer_checklist,
    frames_shown,
    media_context,
    new_link,
    signed_in_handler,
    wait_rising,
)

pytestmark = pytest.mark.e2e

INCIDENT = {
    "cad_reference": "CAD/2026/004242",
    "grade": 3,
    "category": "Criminal damage",
    "caller_name": "Jane Marple",
    "caller_phone": "07700 900456",
    "summary": "Car window smashed overnight",
    "location_text": "St Mary Mead",
}


@pytest.fixture(scope="module")
def appliance() -> Iterator[Appliance]:
    """Open round the clock, so the next slot is never far off whenever the test runs, and
    the link opens two hours before its slot, so the caller can use it at once."""
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    with running_appliance(
        EVR_APPOINTMENT_HOURS=json.dumps(dict.fromkeys(days, "00:00-24:00")),
        EVR_APPOINTMENT_LINK_OPENS_MINUTES="120",
    ) as running:
        yield running


def _api_key(appliance: Appliance) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "appliance", "apikey", "create", "cad"],
        env={**os.environ, **appliance.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_from_cad_to_the_call(browser: Browser, appliance: Appliance) -> None:
    staff = media_context(browser)
    office = browser.new_context(ignore_https_errors=True)
    phone = media_context(browser, mobile=True)
    try:
        created = staff.request.post(
            appliance.base_url + "/api/v1/incidents",
            data=INCIDENT,
            headers={"Authorization": f"Bearer {_api_key(appliance)}"},
        )
        assert created.status == 201, created.text()

        handler = signed_in_handler(staff, appliance, "pc5001")
        handler.get_by_role("link", name="Incidents", exact=True).click()
        handler.get_by_label("Not yet taken").check()
        handler.get_by_role("button", name="Filter").click()
        handler.get_by_role("link", name="CAD/2026/004242").click()
        handler.get_by_role("button", name="Take this incident").click()
        answer_checklist(handler)
        booking = handler.locator("#appointments form")
        slot = booking.get_by_label("Next free slots (UK time)")
        expect(slot).to_be_visible()
        booking.get_by_label("It is safe to contact the caller on this number now").check()
        booking.get_by_role("button", name="Book video appointment").click()
        expect(handler.locator("#appointments")).to_contain_text("Booked for")
        for _ in range(20):  # the dispatcher stores it within moments; reload to see it
            if "stored" in handler.locator("#sms").inner_text():
                break
            handler.wait_for_timeout(250)
            handler.reload()
        expect(handler.locator("#sms")).to_contain_text("stored")

        admin = office.new_page()
        admin.goto(appliance.base_url + "/login")
        admin.get_by_label("Username").fill("admin")
        admin.get_by_label("Password").fill(appliance.admin_password)
        admin.get_by_role("button", name="Sign in").click()
        admin.get_by_label("Current password").fill(appliance.admin_password)
        admin.get_by_label("New password", exact=True).fill("the chief's own long passphrase")
        admin.get_by_label("New password again").fill("the chief's own long passphrase")
        admin.get_by_role("button", name="Change password").click()
        admin.goto(appliance.base_url + "/admin/outbox")
        row = admin.locator("tr", has_text="07700 900456").filter(has_text="stored").first
        text = row.locator("td").nth(3).inner_text()
        link = re.search(r"https://\S+/v/[A-Za-z0-9_-]{43}", text).group(0)

        caller = phone.new_page()
        caller.goto(link)
        caller.get_by_label("I agree to a video call with the police").check()
        caller.get_by_role("button", name="Continue").click()
        caller.get_by_role("button", name="Join video call").click()
        expect(caller.get_by_text("The officer will join you shortly")).to_be_visible()

        handler.goto(appliance.base_url + "/calls")
        handler.locator("#queue tr", has_text="CAD/2026/004242").get_by_role(
            "link", name="Open call"
        ).click()
        handler.get_by_role("button", name="Admit caller").click()
        wait_rising(lambda: frames_shown(handler, "#remote-video"), floor=5)
        handler.get_by_role("button", name="End call").click()
        expect(caller.get_by_role("heading", name="The call has ended")).to_be_visible()
    finally:
        phone.close()
        office.close()
        staff.close()


PAGES = Path(__file__).resolve().parents[2] / "test-artifacts" / "pages"


def test_the_incident_page_shows_the_new_link_and_the_next_step_above_the_fold(
    browser: Browser, appliance: Appliance
) -> None:
    """At 1920×1080: "New incident" opens the form above the list, the incident page's
    header names the next step, the answered checklist is one line with Change, and the
    link just made sits inside the first screen without scrolling. A second press gives a
    new link in its place. Screenshots of the home page, the list and the incident page
    go to test-artifacts/pages/."""
    PAGES.mkdir(parents=True, exist_ok=True)
    staff = media_context(browser)
    try:
        handler = signed_in_handler(staff, appliance, "pc5002")
        handler.set_viewport_size({"width": 1920, "height": 1080})
        handler.screenshot(path=str(PAGES / "home-1920.png"))
        handler.goto(appliance.base_url + "/incidents")
        handler.get_by_text("New incident", exact=True).first.click()
        expect(handler.get_by_label("Caller's mobile number")).to_be_visible()
        handler.screenshot(path=str(PAGES / "incidents-new-1920.png"))
        link = new_link(handler, appliance, "CAD/E2E/PAGE1")
        expect(handler.locator("#next-step")).to_contain_text("Link made: wait for the caller")
        expect(handler.locator("#eligibility-step")).not_to_have_attribute("open", "")
        expect(handler.locator("#eligibility-step summary")).to_contain_text("Change")
        assert handler.evaluate("window.scrollY") == 0
        box = handler.get_by_role("textbox", name="Video call link").bounding_box()
        assert box is not None and box["y"] + box["height"] <= 1080, box
        head = handler.locator("#next-step").bounding_box()
        assert head is not None and head["y"] < box["y"], (head, box)
        handler.screenshot(path=str(PAGES / "incident-link-1920.png"))

        handler.get_by_role("button", name="Create video call link").click()
        again = handler.get_by_role("textbox", name="Video call link").input_value()
        assert again != link and re.fullmatch(r"https://[^/]+/v/[A-Za-z0-9_-]{43}", again)
    finally:
        staff.close()


def test_a_caller_upload_survives_a_lost_answer_and_arrives_whole(
    browser: Browser, appliance: Appliance, tmp_path: Path
) -> None:
    """The caller's page sends a 2.5 MiB video in 1 MiB chunks; the box's answer to the
    second chunk is lost on the way back (the request reached the box, the page sees a
    dropped connection). The page tries again, is told 409 with the box's offset, asks
    the status and carries on from there: the incident shows the file with the SHA-256
    of the bytes chosen."""
    video = media_files.mp4(tmp_path / "base.mp4")
    padding = os.urandom(2_600_000)
    video += (8 + len(padding)).to_bytes(4, "big") + b"free" + padding  # a trailing free box
    (tmp_path / "clip.mp4").write_bytes(video)
    staff = media_context(browser)
    phone = media_context(browser, mobile=True)
    try:
        handler = signed_in_handler(staff, appliance, "pc5003")
        new_link(handler, appliance, "CAD/E2E/UPLOAD1")
        handler.get_by_role("button", name="Ask for photos and videos (link)").click()
        link = handler.get_by_role("textbox", name="Photos and videos link").input_value()

        caller = phone.new_page()
        seen: list[str] = []
        caller.on("request", lambda r: seen.append(f"{r.method} {r.url.rsplit('/', 1)[-1]}"))
        puts = []

        def lose_second_answer(route: Route) -> None:
            puts.append(route.request.url)
            if len(puts) == 2:
                route.fetch()  # the box takes the chunk; its answer never reaches the page
                route.abort("connectionreset")
            else:
                route.continue_()

        caller.route(
            re.compile(r".*/uploads/[0-9a-f]{32}$"),
            lambda r: lose_second_answer(r) if r.request.method == "PUT" else r.continue_(),
        )
        caller.goto(link)
        caller.get_by_label("I agree to send photos and videos to the police").check()
        caller.get_by_role("button", name="Continue").click()
        # upload.js sends in chunks once the page's scripts ran; a click before that posts
        # the plain form (which works too, but is not what this test is about).
        expect(caller.locator("#upload-form")).to_be_visible()
        caller.wait_for_load_state("load")
        caller.set_input_files("#files", str(tmp_path / "clip.mp4"))
        caller.get_by_role("button", name="Send").click()
        expect(caller.locator("#upload-status")).to_contain_text(
            "Received: clip.mp4", timeout=90_000
        )
        assert len(puts) == 4, puts  # 3 chunks, the second sent twice
        assert any(s.startswith("GET ") and re.fullmatch(r"GET [0-9a-f]{32}", s) for s in seen)

        handler.reload()
        expect(handler.locator("#uploads")).to_contain_text(
            hashlib.sha256(video).hexdigest(), timeout=30_000
        )
    finally:
        phone.close()
        staff.close()


def _statement_sent_and_call_ended(appliance: Appliance, reference: str) -> None:
    """The officer sent a statement to sign and ended the call (by the services, beside
    the running appliance): what a caller finds on opening their link after the call."""
    settings = load_settings(data_dir=appliance.data_dir)
    database = Database(settings.effective_database_url)
    try:
        with database.session() as session:
            incident = session.exec(
                select(Incident).where(Incident.cad_reference == reference)
            ).one()
            call = session.exec(
                select(Call)
                .join(Invite, col(Invite.id) == col(Call.invite_id))
                .where(Call.incident_id == incident.id, Invite.kind == "video")
            ).one()
            officer = accounts.require(session, "pc5004")
            states.caller_waiting(session, call, "t")
            life.admit(session, settings, call, officer, "t")
            statements.save(
                session,
                Actor("pc5004"),
                officer,
                incident,
                Witness.clean("Jane Marple", "", "", "I saw the van at 21:40."),
                settings.statement_declaration,
                call,
            )
            statements.send(session, Actor("pc5004"), incident, call)
            life.end(session, settings, call, Actor("pc5004"), "handler_ended")
    finally:
        database.dispose()


def test_the_upload_location_and_statement_pages_pass_axe_in_every_state(
    browser: Browser, appliance: Appliance, tmp_path: Path
) -> None:
    """axe-core (WCAG 2.2 A and AA) on each state of the pages a caller reaches beside the
    call: photos and videos (consent, ready, a file refused, a file received),
    the location (consent, ready, refused by the phone, sent) and the statement signed
    after the call (to read and sign, signed)."""
    (tmp_path / "note.txt").write_text("not a photo")
    (tmp_path / "photo.jpg").write_bytes(media_files.jpeg())
    staff = media_context(browser)
    phone = media_context(browser, mobile=True)
    try:
        handler = signed_in_handler(staff, appliance, "pc5004")
        video_link = new_link(handler, appliance, "CAD/E2E/PAGES")
        handler.get_by_role("button", name="Ask for photos and videos (link)").click()
        upload_link = handler.get_by_role("textbox", name="Photos and videos link").input_value()
        handler.get_by_role("button", name="Ask for the location (link)").click()
        location_link = handler.get_by_role("textbox", name="Location link").input_value()

        caller = phone.new_page()
        caller.goto(upload_link)
        assert_accessible(caller, "upload: consent")
        caller.get_by_label("I agree to send photos and videos to the police").check()
        caller.get_by_role("button", name="Continue").click()
        expect(caller.locator("#upload-form")).to_be_visible()
        caller.wait_for_load_state("load")
        assert_accessible(caller, "upload: ready")
        caller.set_input_files("#files", str(tmp_path / "note.txt"))
        caller.get_by_role("button", name="Send").click()
        expect(caller.locator("#upload-status")).not_to_contain_text("Sending")
        expect(caller.locator("#upload-status")).not_to_be_empty()
        assert_accessible(caller, "upload: a file refused")
        caller.set_input_files("#files", str(tmp_path / "photo.jpg"))
        caller.get_by_role("button", name="Send").click()
        expect(caller.locator("#upload-status")).to_contain_text("Received: photo.jpg")
        assert_accessible(caller, "upload: a file received")

        caller.goto(location_link)
        assert_accessible(caller, "location: consent")
        caller.get_by_label(re.compile("I agree to share")).check()
        caller.get_by_role("button", name="Continue").click()
        expect(caller.locator("#share-location")).to_be_enabled()
        assert_accessible(caller, "location: ready")
        caller.get_by_role("button", name="Share my location").click()  # not allowed yet
        expect(caller.locator("#location-status")).to_contain_text("Location was not allowed")
        assert_accessible(caller, "location: refused by the phone")
        phone.grant_permissions(["geolocation"])
        phone.set_geolocation({"latitude": 50.7156, "longitude": -2.4400, "accuracy": 12})
        caller.get_by_role("button", name="Share my location").click()
        expect(caller.get_by_text("Your location has reached the officer")).to_be_visible()
        assert_accessible(caller, "location: sent")

        caller.goto(video_link)
        caller.get_by_label("I agree to a video call with the police").check()
        caller.get_by_role("button", name="Continue").click()
        expect(caller.get_by_role("button", name="Join video call")).to_be_visible()
        _statement_sent_and_call_ended(appliance, "CAD/E2E/PAGES")
        caller.goto(video_link)
        expect(caller).to_have_url(re.compile(r"/statement/sign$"))
        expect(caller.locator("#st-account")).to_contain_text("I saw the van at 21:40.")
        assert_accessible(caller, "statement after the call: to read and sign")
        caller.get_by_label("Type your full name").fill("Jane Marple")
        caller.get_by_label("Sign by my typed name, without drawing").check()
        caller.get_by_label("I confirm that typing my full name").check()
        caller.get_by_role("button", name="Sign statement").click()
        expect(caller.locator("#statement-status")).to_contain_text(
            "You signed this statement as Jane Marple", timeout=20_000
        )
        assert_accessible(caller, "statement after the call: signed")
    finally:
        phone.close()
        staff.close()
