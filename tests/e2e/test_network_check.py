"""The check before joining: can the caller's phone reach the box's TURN server?

A real coturn on 127.0.5.78:3478 (UDP and TCP, the call's credentials minted by the box
with ``use-auth-secret``) is the only ICE server the appliance hands out. Chromium's
camera check gathers candidates against it: a relay candidate means video can get out.
Then coturn is stopped, as a firewall that lets nothing out would, and the next caller
is told in plain words what to try, and may still join.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.support.appliance import Appliance, running_appliance
from tests.support.axe import assert_accessible
from tests.support.browser import new_link
from tests.support.coturn import TurnServer, running_coturn

pytestmark = pytest.mark.e2e

TURN_ADDRESS = "127.0.5.78"
TURN_SECRET = "network-check-test-secret-0123456789"
REACHED = "Your connection can reach the video service."
BLOCKED = "Your connection may block video calls."


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TurnServer]:
    folder = tmp_path_factory.mktemp("coturn")
    with running_coturn(
        folder, TURN_ADDRESS, TURN_SECRET, ["--listening-port=3478"], 3478, (40400, 40499)
    ) as server:
        yield server


@pytest.fixture(scope="module")
def appliance(coturn: TurnServer) -> Iterator[Appliance]:
    with running_appliance(
        EVR_TURN_URLS=json.dumps([f"turn:{TURN_ADDRESS}:3478?transport=udp"]),
        EVR_TURN_SECRET=TURN_SECRET,
    ) as running:
        yield running


def _camera_check(phone: BrowserContext, link: str) -> Page:
    caller = phone.new_page()
    caller.goto(link)
    caller.get_by_label("Yes, I agree to a video call with the police").check()
    caller.get_by_label("Yes, the call may be recorded").check()
    caller.get_by_role("button", name="Continue").click()
    expect(caller.get_by_role("button", name="Join video call")).to_be_enabled(timeout=20_000)
    return caller


def test_the_camera_check_says_whether_video_can_get_out_and_never_stops_the_caller_joining(
    handler: Page, phone: BrowserContext, appliance: Appliance, coturn: TurnServer
) -> None:
    reached = _camera_check(phone, new_link(handler, appliance, "CAD/E2E/NET1"))
    expect(reached.locator("#network-status")).to_have_text(REACHED, timeout=15_000)
    assert reached.evaluate("() => window.evrCaller.network") == "ok"
    assert "relay" in reached.evaluate("() => window.evrCaller.networkCandidates")
    reached.close()

    coturn.stop()
    blocked = _camera_check(phone, new_link(handler, appliance, "CAD/E2E/NET2"))
    status = blocked.locator("#network-status")
    expect(status).to_contain_text(BLOCKED, timeout=20_000)
    expect(status).to_contain_text("try Wi-Fi instead of mobile data")
    assert blocked.evaluate("() => window.evrCaller.network") == "blocked"
    assert_accessible(blocked, "the camera check, the network advice shown")
    blocked.get_by_role("button", name="Join video call").click()
    expect(blocked.get_by_text("The officer will join you shortly")).to_be_visible()
