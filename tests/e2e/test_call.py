"""A whole video call in two real browsers: the caller's phone and the handler's console.

The caller's call screen on a 390×844 phone too: what they see while the officer's
camera is off, the top bar, the banner for a message, End call asking first, a reload
rejoining, the officer's connection dropping; and a camera check that learns the call
has gone. A call that loses all UDP for 5 s comes back by itself (nftables in the
suite's network namespace, tests/support/outage.py); either side switches the call to
sound only. One call carries most of it (each call costs seconds). Screenshots of each
caller state are kept under test-artifacts/caller/ at the repository root
(docs/development.md)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.appliance import Appliance
from tests.support.axe import (
    assert_accessible,
    assert_controls_edged_in_forced_colours,
    assert_reflows,
    violations,
)
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
from tests.support.evidence import (
    a_video_frame,
    files_containing,
    opened_in,
    wait_recordings_sealed,
)
from tests.support.metrics import scrape, value
from tests.support.outage import UdpOutage, box_ports

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
    # Said to a screen reader too: a status message outside the call's own sections.
    expect(
        caller.get_by_role("status").filter(has_text="This call is being recorded.")
    ).to_have_count(1)

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
    # The officer's video is now the caller's big picture; their own view goes small.
    expect(caller.locator("#stage")).to_have_attribute("data-view", "officer")
    assert box_of(caller, "#remote")["width"] >= 340
    assert box_of(caller, "#self")["width"] < 120
    shot(caller, "11-officer-camera-on")
    assert_accessible(caller, "connected, the officer's camera on")

    time.sleep(max(0.0, 4 - (time.monotonic() - admitted_at)))
    handler.get_by_role("button", name="End call").click()
    call_seconds = time.monotonic() - admitted_at
    expect(caller.get_by_role("heading", name="The call has ended")).to_be_visible()
    expect(handler.locator("#call-state")).to_have_attribute("data-state", "ended")

    wait_recordings_sealed(appliance.data_dir)
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
        expect(caller.locator("#sound-only")).to_be_visible()
        expect(caller.locator("#self-caption")).to_be_hidden()
        expect(caller.get_by_role("button", name="Switch camera")).to_be_hidden()
        shot(caller, "12-sound-only")
        handler.get_by_role("button", name="End call").click()
        expect(caller.get_by_role("heading", name="The call has ended")).to_be_visible()
        call_dir = appliance.data_dir / "calls" / handler.url.rsplit("/", 1)[-1]
        assert not list(call_dir.glob("recording-*")), "recorded without the caller's consent"
    finally:
        no_camera.close()


def test_a_caller_without_a_microphone_shows_the_scene_and_types(
    browser: Browser, handler: Page, appliance: Appliance
) -> None:
    """The phone refuses the microphone (its settings block it): the caller is told they
    can still join to show the scene and type. On the call the officer sees the camera,
    the caller hears the officer, the console says the caller has no microphone (not
    "sound only"), and the messages carry the conversation. Then a phone that refuses
    both joins to watch and listen: its offer receives audio and video and sends none."""
    link = new_link(handler, appliance, "CAD/E2E/4")
    silent = media_context(browser, mobile=True, microphone=False)
    try:
        caller = silent.new_page()
        caller.goto(link)
        caller.get_by_label("I agree to a video call with the police").check()
        caller.get_by_role("button", name="Continue").click()
        expect(caller.locator("#check-status")).to_have_text(
            re.compile("^Your microphone is not available. You can still join: the officer")
        )
        caller.get_by_role("button", name="Join video call").click()
        admit_first_waiting(handler, appliance, "CAD/E2E/4")
        wait_rising(lambda: frames_shown(handler, "#remote-video"), floor=5)
        wait_rising(lambda: inbound_packets(caller, "evrCaller", "audio"), floor=10)
        expect(handler.locator("#no-microphone")).to_have_text(
            "Caller has no microphone – use messages"
        )
        expect(handler.locator("#sound-only")).to_be_hidden()
        expect(caller.locator("#no-microphone-note")).to_be_visible()
        expect(caller.get_by_role("button", name="Mute")).to_be_hidden()
        expect(caller.locator("#self-caption")).to_be_visible()
        caller.get_by_label("Message to the officer").fill("He is still outside")
        caller.get_by_role("button", name="Send", exact=True).click()
        expect(handler.locator("#chat")).to_contain_text("He is still outside")
        assert_accessible(caller, "call: no microphone")
        shot(caller, "13-no-microphone")
        handler.get_by_role("button", name="End call").click()
        expect(caller.get_by_role("heading", name="The call has ended")).to_be_visible()
    finally:
        silent.close()

    link = new_link(handler, appliance, "CAD/E2E/5")
    neither = media_context(browser, mobile=True, camera=False, microphone=False)
    try:
        caller = neither.new_page()
        caller.goto(link)
        caller.get_by_label("I agree to a video call with the police").check()
        caller.get_by_role("button", name="Continue").click()
        expect(caller.locator("#check-status")).to_have_text(
            "Your camera and microphone are not available. You can still join to see and "
            "hear the officer and type messages."
        )
        caller.get_by_role("button", name="Join video call").click()
        expect(caller.get_by_role("heading", name="Please wait")).to_be_visible()
        caller.wait_for_function("() => evrCaller.pc && evrCaller.pc.remoteDescription")
        directions = caller.evaluate(
            "() => evrCaller.pc.getTransceivers().slice(0, 2)"
            ".map((t) => t.receiver.track.kind + ' ' + t.direction)"
        )
        assert directions == ["audio recvonly", "video recvonly"]
        assert_accessible(caller, "waiting: no camera and no microphone")
    finally:
        neither.close()


def test_bad_links_show_a_plain_page_and_open_no_media(
    phone: BrowserContext, handler: Page, appliance: Appliance
) -> None:
    page = phone.new_page()
    response = page.goto(appliance.base_url + "/v/not-a-real-link-at-all")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="This link does not work")).to_be_visible()
    assert page.evaluate("typeof window.evrCaller") == "undefined"
    assert_accessible(page, "problem page: no such link")
    # The check itself: an unlabelled field put on the page is what it reports.
    page.evaluate("document.querySelector('main').insertAdjacentHTML('beforeend', '<input>')")
    assert [found["id"] for found in violations(page)] == ["label"]

    link = new_link(handler, appliance, "CAD/E2E/3")
    handler.get_by_role("button", name="Revoke link").click()
    response = page.goto(link)
    assert response is not None and response.status == 410
    expect(page.get_by_role("heading", name="This link is no longer in use")).to_be_visible()
    assert page.evaluate("typeof window.evrCaller") == "undefined"
    assert_accessible(page, "problem page: revoked link")


SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "caller"
CAPTION = "The officer can see this. Point your camera at what you want to show them."


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def box_of(page: Page, selector: str) -> dict[str, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return box


def test_the_callers_screen_through_a_call(
    browser: Browser, handler: Page, phone: BrowserContext, appliance: Appliance
) -> None:
    link = new_link(handler, appliance, "CAD/E2E/CS1")
    caller = phone.new_page()
    caller.goto(link)

    # Consent: the officer and the reference shown; an unanswered question is an error
    # summary whose link leads to the field.
    expect(caller.locator("#who-reference")).to_have_text("CAD/E2E/CS1")
    expect(
        caller.get_by_text("Stay on your phone call until the officer tells you")
    ).to_be_visible()
    shot(caller, "01-consent")
    assert_accessible(caller, "consent")
    caller.get_by_role("button", name="Continue").click()
    summary = caller.locator(".error-summary")
    expect(summary).to_contain_text("Select yes if you agree to a video call")
    shot(caller, "02-consent-error")
    assert_accessible(caller, "consent with its error summary")
    # At 320 CSS px, and there with the text at 200% as well (a phone's larger text on
    # the narrowest screen): nothing sideways, every control whole and apart. Welsh has
    # the longest words; Arabic runs right to left.
    pages = ("/accessibility", "/privacy", "/privacy?lang=cy", "/accessibility?lang=ar")
    for path in (link, *pages, "/v/not-a-real-link-at-all"):
        url = path if "://" in path else appliance.base_url + path
        assert_reflows(browser, url)
        assert_reflows(browser, url, text_zoom=200)
    assert_controls_edged_in_forced_colours(caller)
    summary.get_by_role("link").click()
    expect(caller.locator("#consent_video-yes")).to_be_focused()
    radio_px = caller.eval_on_selector(
        "#consent_video-yes", "e => e.getBoundingClientRect().height"
    )
    assert radio_px >= 20, radio_px
    caller.get_by_label("Yes, I agree to a video call with the police").check()
    caller.get_by_label("Yes, the call may be recorded").check()
    caller.get_by_role("button", name="Continue").click()

    # Not an RVR call: no quick exit to mistap.
    expect(caller.get_by_role("heading", name="Check your camera")).to_be_visible()
    assert caller.locator("#quick-exit").count() == 0
    join = caller.get_by_role("button", name="Join video call")
    expect(join).to_be_enabled()
    shot(caller, "03-camera-check")
    assert_accessible(caller, "camera check")
    join.click()
    expect(caller.get_by_text("The officer will join you shortly")).to_be_visible()
    shot(caller, "04-waiting")
    assert_accessible(caller, "waiting for the officer")

    admit_first_waiting(handler, appliance, "CAD/E2E/CS1")
    bar = caller.locator("#call-bar")
    expect(bar).to_contain_text("Connected to Pat Handler")
    expect(caller.locator("#recording-indicator")).to_be_visible()
    expect(caller.locator("#call-timer")).not_to_have_text("00:00", timeout=5_000)

    # The officer's camera is off: the caller's own view is the big picture, captioned.
    expect(caller.locator("#self-caption")).to_have_text(CAPTION)
    expect(caller.locator("#stage")).to_have_attribute("data-view", "self")
    own = box_of(caller, "#self")
    assert own["width"] >= 340 and own["height"] >= 420, own
    assert box_of(caller, "#remote")["width"] <= 2
    wait_rising(lambda: inbound_packets(caller, "evrCaller", "audio"), floor=10)
    shot(caller, "05-call-officer-camera-off")

    # Every control on the call screen is a 44 px touch target; typing does not zoom.
    small = caller.evaluate(
        """() => [...document.querySelectorAll("button, a, input, select, textarea")]
            .filter((e) => e.offsetParent !== null)
            .map((e) => [e.id || e.textContent.trim(), e.getBoundingClientRect().height])
            .filter(([, height]) => height < 44)"""
    )
    assert small == [], small
    typed = caller.eval_on_selector("#chat-text", "e => parseFloat(getComputedStyle(e).fontSize)")
    assert typed >= 16, typed
    assert_accessible(caller, "connected, the officer's camera off")
    assert_controls_edged_in_forced_colours(caller)

    # A message from the officer raises a banner with a button.
    handler.get_by_label("Message to the caller").fill("Can you show me the back door?")
    handler.get_by_role("button", name="Send", exact=True).click()
    banner = caller.locator("#call-banner")
    expect(banner).to_contain_text("Can you show me the back door?")
    shot(caller, "06-message-banner")
    assert_accessible(caller, "connected, a message banner")
    banner.get_by_role("button", name="Read it").click()
    expect(banner).to_be_hidden()
    expect(caller.locator("#chat-text")).to_be_focused()

    # Messages first (a deaf caller): the officer switches; the caller's messages move
    # above the video in the page itself (reading and tab order follow), the cursor is
    # in the message box, and a note says video and sound are optional. Then back.
    caller.locator("#chat-text").blur()
    handler.get_by_role("button", name="Messages first").click()
    expect(handler.get_by_role("button", name="Messages first")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(caller.locator("#text-first-note")).to_contain_text("would like to talk by messages")
    expect(caller.locator("#chat-text")).to_be_focused()
    # compareDocumentPosition: 4, the stage follows the messages; 2, it precedes them.
    order = "() => document.getElementById('chat-card').compareDocumentPosition(stage)"
    assert caller.evaluate(order) & 4, "the messages are not above the video"
    assert_accessible(caller, "messages first")
    handler.get_by_role("button", name="Messages first").click()
    expect(caller.locator("#text-first-note")).to_be_hidden()
    assert caller.evaluate(order) & 2, "the messages did not go back below the video"

    # End call asks first; Go back keeps the call.
    caller.locator("#end").click()
    dialog = caller.locator("#end-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("End the video call?")
    shot(caller, "07-end-call-asks")
    assert_accessible(caller, "End call asking first")
    dialog.get_by_role("button", name="Go back").click()
    expect(dialog).to_be_hidden()
    expect(handler.locator("#call-state")).to_have_attribute("data-state", "connected")

    # A reload rejoins by itself: no camera check, the bar still names the officer.
    caller.reload()
    expect(caller.locator("#call-bar")).to_contain_text("Connected to Pat Handler")
    expect(caller.get_by_role("button", name="End call")).to_be_visible()
    assert caller.evaluate("window.evrCaller.rejoined") is True
    wait_rising(lambda: inbound_packets(caller, "evrCaller", "audio"), floor=0)
    # The officer gets the caller's video again on the connection they already had.
    wait_rising(lambda: inbound_packets(handler, "evrConsole", "video"), floor=0)
    expect(handler.locator("#call-state")).to_have_attribute("data-state", "connected")

    # The officer's page goes: the caller is told to stay.
    handler.close()
    note = caller.locator("#officer-note")
    expect(note).to_contain_text("Stay on this page – they will come back")
    shot(caller, "08-officer-dropped")
    assert_accessible(caller, "the officer's connection dropped")

    caller.locator("#end").click()
    dialog.get_by_role("button", name="End call").click()
    expect(caller.get_by_role("heading", name="The call has ended")).to_be_visible()
    # The caller ended it: the same link lets them back for a few minutes.
    expect(caller.get_by_role("button", name="Rejoin the call")).to_be_visible()
    expect(caller.locator("#rejoin-left")).to_have_text(re.compile(r"^[45]:\d\d$"))
    shot(caller, "09-ended")
    assert_accessible(caller, "ended, with Rejoin")


def test_the_camera_check_learns_that_the_link_was_revoked(
    handler: Page, phone: BrowserContext, appliance: Appliance
) -> None:
    """A caller still on the camera check (no socket yet) is told when the call is gone."""
    link = new_link(handler, appliance, "CAD/E2E/CS2")
    caller = phone.new_page()
    caller.goto(link)
    caller.get_by_label("Yes, I agree to a video call with the police").check()
    caller.get_by_role("button", name="Continue").click()
    expect(caller.get_by_role("heading", name="Check your camera")).to_be_visible()
    handler.get_by_role("button", name="Revoke link").click()
    expect(caller.get_by_role("heading", name="The call has ended")).to_be_visible(timeout=12_000)


def test_the_callers_camera_comes_back_after_ios_ends_it_without_a_new_offer(
    handler: Page, phone: BrowserContext, appliance: Appliance
) -> None:
    """iOS ends the camera track while the caller is in another app; on their return
    (visibilitychange to visible) the page takes a fresh camera track onto the same
    sender: the console's received frames rise again, and the caller's local description
    is the one it had (no new offer, no renegotiation)."""
    link = new_link(handler, appliance, "CAD/E2E/IOS")
    caller = caller_joins(phone, link, recording=False)
    admit_first_waiting(handler, appliance, "CAD/E2E/IOS")
    wait_rising(lambda: frames_shown(handler, "#remote-video"), floor=5)
    before = caller.evaluate(
        """() => {
            const sender = evrCaller.pc.getSenders().find((s) => s.track?.kind === "video");
            const id = sender.track.id;
            sender.track.stop();
            const sdp = evrCaller.pc.localDescription.sdp;
            return { sdp: sdp, id: id, state: sender.track.readyState };
        }"""
    )
    assert before["state"] == "ended"
    caller.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
    caller.wait_for_function(
        """(old) => {
            const sender = evrCaller.pc.getSenders().find((s) => s.track?.kind === "video");
            return evrCaller.cameraBack === 1 && sender.track.id !== old
                && sender.track.readyState === "live";
        }""",
        arg=before["id"],
        timeout=10_000,
    )
    # Counted from after the new track went on: the officer sees the caller again.
    wait_rising(lambda: frames_shown(handler, "#remote-video"), floor=0)
    assert caller.evaluate("() => evrCaller.pc.localDescription.sdp") == before["sdp"]
    assert (
        caller.evaluate(
            "() => document.getElementById('self').srcObject.getVideoTracks()[0].readyState"
        )
        == "live"
    )


def frames_decoded(page: Page, diagnostics: str) -> int:
    """Video frames the page's connection has decoded (what a frozen picture stops)."""
    return page.evaluate(
        """async (name) => {
            const pc = window[name] && window[name].pc;
            if (!pc) return 0;
            let total = 0;
            (await pc.getStats()).forEach((r) => {
                if (r.type === "inbound-rtp" && r.kind === "video") total += r.framesDecoded || 0;
            });
            return total;
        }""",
        diagnostics,
    )


OUTAGE_S = 5.0
MEDIA_BACK_LIMIT_S = 3.0
HOLES_SKIPPED = "evr_media_video_holes_skipped_total"


def test_the_call_comes_back_after_five_seconds_without_udp(
    handler: Page, phone: BrowserContext, appliance: Appliance, record_property: object
) -> None:
    """Mid-call every UDP packet is dropped for 5 s (both legs: caller to box and box to
    console), then let through again. Media flows again both ways within 3 s (each
    side's audio arrives again); the caller's video is on the console again, with nobody
    pressing anything, and the box's metrics show it stepped over the gap. The drop
    rule's counter shows the outage was real and the console's decoded frames show the
    picture froze during it. How soon the picture came back is recorded, not judged (it
    waits for a keyframe): on a quiet box 1.5 s, on a box running three test workers up to
    9 s; the gap stepped over is what tells the fix from aiortc's wait for 512 more
    packets.

    What it found: Chromium kept its ICE pair through 5 s (consent resumed, no restart
    was needed), but the picture stayed frozen ~10 s after the line came back: the box's
    video jitter buffer waited for packets the caller's NACK history no longer held
    (media.passthrough.HoleSkippingJitterBuffer). Measured after the fix: 1.5 s."""
    link = new_link(handler, appliance, "CAD/E2E/NET1")
    caller = caller_joins(phone, link)
    admit_first_waiting(handler, appliance, "CAD/E2E/NET1")
    wait_rising(lambda: frames_decoded(handler, "evrConsole"), floor=10)
    holes_before = value(scrape(appliance), HOLES_SKIPPED, role="caller")

    outage = UdpOutage(
        box_ports(
            handler.evaluate("() => window.evrConsole.pc.remoteDescription.sdp"),
            caller.evaluate("() => window.evrCaller.pc.remoteDescription.sdp"),
        )
    )
    outage.start()
    try:
        time.sleep(1.5)  # what was in flight and in the jitter buffer is played out
        frozen_at = frames_decoded(handler, "evrConsole")
        time.sleep(OUTAGE_S - 1.5)
        during = frames_decoded(handler, "evrConsole") - frozen_at
        dropped = outage.dropped()
        heard = {
            "console": inbound_packets(handler, "evrConsole", "audio"),
            "caller": inbound_packets(caller, "evrCaller", "audio"),
        }
    finally:
        outage.stop()
    restored = time.monotonic()
    assert dropped > 50, f"the rule dropped only {dropped} packets: no outage happened"
    assert during <= 2, f"{during} frames decoded during the outage: UDP was not cut"

    # Media flows again both ways within 3 s: each side's audio (50 packets a second)
    # arrives through the box again, with no ICE restart and nobody pressing anything.
    sides = {"console": (handler, "evrConsole"), "caller": (caller, "evrCaller")}
    flowing_after: dict[str, float] = {}
    while len(flowing_after) < 2 and time.monotonic() - restored < 15:
        for side, (page, name) in sides.items():
            if side not in flowing_after and inbound_packets(page, name, "audio") > heard[side] + 5:
                flowing_after[side] = time.monotonic() - restored
        time.sleep(0.05)
    record_property("audio_back_after_s", flowing_after)
    print(f"each side's audio arriving again after {flowing_after} s")
    assert set(flowing_after) == {"console", "caller"}, (flowing_after, appliance.log_tail())
    assert max(flowing_after.values()) <= MEDIA_BACK_LIMIT_S, flowing_after

    back_after = None
    while time.monotonic() - restored < 15:
        if frames_decoded(handler, "evrConsole") > frozen_at + during + 3:
            back_after = time.monotonic() - restored
            break
        time.sleep(0.1)
    record_property("video_back_after_s", back_after)
    print(f"caller's video on the console again {back_after} s after UDP came back")
    assert back_after is not None, appliance.log_tail()
    # The picture came back because the box stepped over what never arrived, not because
    # aiortc's buffer gave up 512 packets later (seen by the 2 s quality sample).
    deadline = time.monotonic() + 6
    while (holes := value(scrape(appliance), HOLES_SKIPPED, role="caller") - holes_before) < 1:
        assert time.monotonic() < deadline, "the box never stepped over the outage's gap"
        time.sleep(0.5)
    record_property("video_holes_skipped", holes)
    expect(handler.locator("#call-state")).to_have_attribute("data-state", "connected")
    handler.get_by_role("button", name="End call").click()
    expect(caller.get_by_role("heading", name="The call has ended")).to_be_visible()


def video_frames_sent(page: Page) -> int:
    return page.evaluate(
        """async () => {
            let total = 0;
            (await window.evrCaller.pc.getStats()).forEach((r) => {
                if (r.type === "outbound-rtp" && r.kind === "video") total += r.framesEncoded || 0;
            });
            return total;
        }"""
    )


def wait_still(read: object, timeout: float = 10) -> None:
    """Until a counter stops moving for a second (no new frames going out)."""
    deadline = time.monotonic() + timeout
    last = read()  # type: ignore[operator]
    while time.monotonic() < deadline:
        time.sleep(1)
        now = read()  # type: ignore[operator]
        if now == last:
            return
        last = now
    raise AssertionError(f"still moving ({last})")


def test_either_side_switches_the_call_to_sound_only(
    handler: Page, phone: BrowserContext, appliance: Appliance
) -> None:
    """The caller presses Sound only: their camera stops going out (no renegotiation),
    both screens say so and who chose it, sound goes on; the officer turns video back on
    and the picture returns; the officer's own Sound only reaches the caller's screen."""
    link = new_link(handler, appliance, "CAD/E2E/SO1")
    caller = caller_joins(phone, link)
    admit_first_waiting(handler, appliance, "CAD/E2E/SO1")
    wait_rising(lambda: frames_decoded(handler, "evrConsole"), floor=5)

    caller.get_by_role("button", name="Sound only").click()
    expect(handler.locator("#sound-only-both")).to_have_text("Sound only – caller chose it")
    expect(caller.locator("#sound-only-note")).to_contain_text("you have turned video off")
    expect(caller.get_by_role("button", name="Turn video back on")).to_have_attribute(
        "aria-pressed", "true"
    )
    wait_still(lambda: video_frames_sent(caller))
    wait_rising(lambda: inbound_packets(handler, "evrConsole", "audio"), floor=0)
    shot(caller, "13-sound-only-pressed")
    assert_accessible(caller, "sound only, pressed by the caller")

    handler.get_by_role("button", name="Video back on").click()
    expect(caller.locator("#sound-only-note")).to_be_hidden()
    wait_rising(lambda: frames_decoded(handler, "evrConsole"), floor=0)
    expect(handler.locator("#sound-only-both")).to_be_hidden()

    handler.get_by_role("button", name="Sound only").click()
    expect(caller.locator("#sound-only-note")).to_have_text(
        "The officer switched the call to sound only."
    )
    expect(handler.locator("#sound-only-both")).to_have_text("Sound only – you chose it")
    wait_still(lambda: video_frames_sent(caller))
    handler.get_by_role("button", name="End call").click()
    expect(caller.get_by_role("heading", name="The call has ended")).to_be_visible()
