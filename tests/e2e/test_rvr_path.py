"""Rapid Video Response in real browsers: from CAD to the RVR queue, the safety questions,
Transfer now, the caller joining, and the caller's quick exit to a harmless site."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Browser, expect

from tests.support.appliance import Appliance, running_appliance
from tests.support.axe import assert_accessible
from tests.support.browser import frames_shown, media_context, signed_in_handler, wait_rising

pytestmark = pytest.mark.e2e

HARMLESS = b"<!doctype html><title>Weather</title><h1>Sunny spells</h1>"
LINK_RE = re.compile(r"https://\S+/v/[A-Za-z0-9_-]{43}")


class _Harmless(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(HARMLESS)))
        self.end_headers()
        self.wfile.write(HARMLESS)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def harmless_site() -> Iterator[str]:
    """The quick exit's destination: a small page on loopback (the test has no other net)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Harmless)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/weather"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def appliance(harmless_site: str) -> Iterator[Appliance]:
    with running_appliance(EVR_QUICK_EXIT_URL=harmless_site) as running:
        yield running


def _evr(appliance: Appliance, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "appliance", *args],
        env={**os.environ, **appliance.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _sms_bodies(appliance: Appliance) -> list[str]:
    with sqlite3.connect(appliance.data_dir / "evr.db") as db:
        return [row[0] for row in db.execute("SELECT body FROM outbound_messages ORDER BY id")]


def test_rvr_from_cad_to_a_quick_exit(
    browser: Browser, appliance: Appliance, harmless_site: str
) -> None:
    key = _evr(appliance, "apikey", "create", "cad").strip().splitlines()[-1]
    staff = media_context(browser)
    phone = media_context(browser, mobile=True)
    try:
        earlier = (datetime.now(UTC) - timedelta(hours=47, minutes=50)).isoformat()
        for incident in (
            {
                "cad_reference": "CAD/RVR/G3",
                "grade": 3,
                "category": "Theft",
                "received_at": earlier,
            },
            {"cad_reference": "CAD/RVR/DA", "grade": 3, "category": "Domestic abuse"},
        ):
            created = staff.request.post(
                appliance.base_url + "/api/v1/incidents",
                data={"caller_name": "Jane Marple", "caller_phone": "07700 900777", **incident},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert created.status == 201, created.text()

        officer = signed_in_handler(staff, appliance, "rvr2001")
        _evr(appliance, "user", "set-roles", "rvr2001", "handler", "rvr_officer")
        officer.goto(appliance.base_url + "/rvr")
        queue = officer.locator("#rvr-queue tbody")
        expect(queue).to_contain_text("CAD/RVR/DA")
        expect(queue).not_to_contain_text("CAD/RVR/G3")  # grade 3 work waits its turn
        officer.get_by_role("button", name="Take next RVR call").click()
        expect(officer.locator("h1")).to_contain_text("CAD/RVR/DA")

        for radio in officer.locator("input[type=radio][value=yes]").all():
            radio.check()
        officer.get_by_role("button", name="Record safety answers").click()
        expect(officer.locator(".notice")).to_contain_text("you may transfer now")
        officer.get_by_role("button", name="Transfer now").click()
        expect(officer.locator(".notice")).to_contain_text("Stay on the phone")
        (body,) = _sms_bodies(appliance)
        assert "Wessex" not in body and "olice" not in body
        link = LINK_RE.search(body).group(0)

        caller = phone.new_page()
        caller.goto(link)
        expect(caller).to_have_title("Appointment")
        expect(caller.get_by_text("Wessex Police")).to_have_count(0)
        assert_accessible(caller, "RVR consent, the neutral look with its quick exit")
        caller.get_by_label("I agree to this video call").check()
        caller.get_by_role("button", name="Continue").click()
        caller.get_by_role("button", name="Join video call").click()
        expect(caller.get_by_text("You will be joined shortly")).to_be_visible()
        expect(caller).to_have_title("Appointment")
        assert_accessible(caller, "RVR waiting")

        officer.goto(officer.url.split("?")[0])
        expect(officer.locator("#first-screen")).to_be_visible()
        officer.get_by_role("link", name="Open call console").first.click()
        # Its forms are sent by fetch once the page's scripts ran; a click before that
        # would post the plain form and land on the incident page instead.
        officer.wait_for_load_state("load")
        officer.get_by_role("button", name="Caller is alone and safe").click()
        expect(officer.locator("#rvr-call-safety")).to_contain_text("Recorded: the caller is")
        officer.get_by_role("button", name="Admit caller").click()
        wait_rising(lambda: frames_shown(officer, "#remote-video"), floor=5)
        assert_accessible(caller, "RVR connected")
        assert_accessible(officer, "console: an RVR call connected")

        caller.evaluate(
            "() => { localStorage.setItem('k', '1'); sessionStorage.setItem('k', '1'); }"
        )
        caller.get_by_role("link", name="Exit this page").click()
        caller.wait_for_url(harmless_site)
        expect(caller.get_by_role("heading", name="Sunny spells")).to_be_visible()
        expect(officer.locator("#stage-note")).to_contain_text("quick exit")
        expect(officer.locator("#call-state")).to_have_attribute("data-state", "ended")

        caller.go_back()
        caller.wait_for_load_state()
        assert "/v/" not in caller.url, caller.url
        caller.goto(appliance.base_url + "/v/" + link.rsplit("/", 1)[1])
        expect(caller.get_by_role("heading", name="This video call has finished")).to_be_visible()
        assert_accessible(caller, "RVR link after a quick exit: finished")
        stored = caller.evaluate(
            """async () => ({
                local: localStorage.length,
                session: sessionStorage.length,
                workers: (await navigator.serviceWorker.getRegistrations()).length,
            })"""
        )
        assert stored == {"local": 0, "session": 0, "workers": 0}
        with sqlite3.connect(appliance.data_dir / "evr.db") as db:
            seconds, first_at, transferred_at = db.execute(
                "SELECT i.caller_first_screen_seconds, i.caller_first_screen_at, r.transferred_at"
                " FROM incidents i JOIN rvr_cases r ON r.incident_id = i.id"
                " WHERE i.cad_reference = ?",
                ("CAD/RVR/DA",),
            ).fetchone()
        assert seconds is not None and seconds > 0
        since_transfer = datetime.fromisoformat(first_at) - datetime.fromisoformat(transferred_at)
        print(
            f"RVR: incident made to the caller's first screen {seconds:.1f} s; "
            f"Transfer now to the first screen {since_transfer.total_seconds():.1f} s"
        )
    finally:
        phone.close()
        staff.close()
