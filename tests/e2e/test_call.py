"""A whole video call in two real browsers: the caller's phone and the handler's console."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.appliance import Appliance
from tests.support.browser import (
    admit_first_waiting,
    assert_playable,
    caller_joins,
    frames_shown,
    inbound_packets,
    media_context,
    new_link,
    wait_rising,
)
from tests.support.evidence import a_video_frame, files_containing, opened_in

pytestmark = pytest.mark.e2e


def test_a_recorded_video_call_from_link_to_end(
    handler: Page, phone: BrowserContext, appliance: Appliance
) -> None:
    link = new_link(handler, appliance, "CAD/E2E/1")
    caller = caller_joins(phone, link)
    admit_first_waiting(handler, appliance, "CAD/E2E/1")
    admitted_at = time.monotonic()

    expect(caller.get_by_role("button", name="End call")).to_be_visible()
    wait_rising(lambda: frames_shown(handler, "#remote-video"), floor=5)
    wait_rising(lambda: inbound_packets(caller, "evrCaller", "audio"), floor=10)
    expect(handler.locator("#recording-indicator")).to_be_visible()
    expect(caller.locator("#recording-indicator")).to_be_visible()

    handler.get_by_role("button", name="Snapshot").click()
    snapshot = handler.locator("#gallery img")
    expect(snapshot).to_have_count(1)
    width = snapshot.evaluate("img => img.decode().then(() => img.naturalWidth)")
    assert width >= 320

    handler.get_by_label("Message to the caller").fill("Can you show me the back door?")
    handler.get_by_role("button", name="Send", exact=True).click()
    expect(caller.locator("#chat")).to_contain_text("Can you show me the back door?")
    caller.get_by_label("Message to the officer").fill("It is on the left")
    caller.get_by_role("button", name="Send", exact=True).click()
    expect(handler.locator("#chat")).to_contain_text("It is on the left")

    handler.get_by_role("button", name="Send my video").click()
    wait_rising(lambda: frames_shown(caller, "#remote"), floor=5)

    time.sleep(max(0.0, 4 - (time.monotonic() - admitted_at)))
    handler.get_by_role("button", name="End call").click()
    call_seconds = time.monotonic() - admitted_at
    expect(caller.get_by_role("heading", name="The call has ended")).to_be_visible()
    expect(handler.locator("#call-state")).to_have_attribute("data-state", "ended")

    recordings = list((appliance.data_dir / "calls").glob("*/recording-*.webm"))
    assert len(recordings) == 1, appliance.log_tail()
    plain = opened_in(appliance.data_dir, recordings[0])
    assert_playable(plain, call_seconds)

    # Nothing under the data dir holds a recorded frame or the snapshot in clear.
    still = handler.request.get(appliance.base_url + snapshot.get_attribute("src")).body()
    for pattern in (a_video_frame(plain), still[len(still) // 2 :][:64], plain[:32]):
        assert files_containing(appliance.data_dir, pattern) == [], pattern[:16]


def test_a_caller_without_a_camera_still_gets_an_audio_call(
    browser: Browser, handler: Page, appliance: Appliance
) -> None:
    link = new_link(handler, appliance, "CAD/E2E/2")
    no_camera = media_context(browser, mobile=True, camera=False)
    try:
        caller = no_camera.new_page()
        caller.goto(link)
        caller.get_by_label("I agree to a video call with the police").check()
        caller.get_by_role("button", name="Continue").click()
        expect(caller.get_by_text("You can still join with sound only")).to_be_visible()
        caller.get_by_role("button", name="Join video call").click()
        admit_first_waiting(handler, appliance, "CAD/E2E/2")
        wait_rising(lambda: inbound_packets(caller, "evrCaller", "audio"), floor=10)
        wait_rising(lambda: inbound_packets(handler, "evrConsole", "audio"), floor=10)
        expect(handler.locator("#recording-indicator")).to_be_hidden()
        # Said on the video, not left to be guessed from a black picture.
        expect(handler.locator("#not-recording")).to_have_text("Not recording – caller declined")
        expect(handler.locator("#sound-only")).to_have_text("Caller camera off – sound only")
        handler.get_by_role("button", name="End call").click()
        expect(caller.get_by_role("heading", name="The call has ended")).to_be_visible()
        call_dir = appliance.data_dir / "calls" / handler.url.rsplit("/", 1)[-1]
        assert not list(call_dir.glob("recording-*")), "recorded without the caller's consent"
    finally:
        no_camera.close()


def test_bad_links_show_a_plain_page_and_open_no_media(
    phone: BrowserContext, handler: Page, appliance: Appliance
) -> None:
    page = phone.new_page()
    response = page.goto(appliance.base_url + "/v/not-a-real-link-at-all")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="This link does not work")).to_be_visible()
    assert page.evaluate("typeof window.evrCaller") == "undefined"

    link = new_link(handler, appliance, "CAD/E2E/3")
    handler.get_by_role("button", name="Revoke link").click()
    response = page.goto(link)
    assert response is not None and response.status == 410
    expect(page.get_by_role("heading", name="This link is no longer in use")).to_be_visible()
    assert page.evaluate("typeof window.evrCaller") == "undefined"


def test_the_same_link_recovers_the_call_after_the_page_is_lost(
    handler: Page, phone: BrowserContext, appliance: Appliance
) -> None:
    """A phone that reloads (or loses the page) rejoins the same call with the same link."""
    link = new_link(handler, appliance, "CAD/E2E/4")
    caller = caller_joins(phone, link, recording=False)
    admit_first_waiting(handler, appliance, "CAD/E2E/4")
    wait_rising(lambda: frames_shown(handler, "#remote-video"), floor=5)

    caller.reload()
    expect(caller.get_by_role("heading", name="Check your camera")).to_be_visible()
    caller.get_by_role("button", name="Join video call").click()
    expect(caller.get_by_role("button", name="End call")).to_be_visible()
    wait_rising(lambda: inbound_packets(caller, "evrCaller", "audio"), floor=10)
    wait_rising(lambda: frames_shown(handler, "#remote-video"), floor=0)
    expect(handler.locator("#call-state")).to_have_attribute("data-state", "connected")
    caller.get_by_role("button", name="End call").click()
    expect(handler.locator("#call-state")).to_have_attribute("data-state", "ended")
