"""Debian's chromium through Playwright, and the steps of a call as the two people on it take them.

Never a downloaded browser: `executable_path` is Debian's `chromium-headless-shell`, the
same engine (Blink, WebRTC) as `/usr/bin/chromium` without the desktop browser around
it, which `make test` installs. It is what Playwright itself runs headless: the browser
tests took a third less CPU with it than with `chromium` (docs/development.md). Flags as
the spike on this machine found them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import pyotp
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.appliance import Appliance

CHROMIUM = os.environ.get("EVR_TEST_CHROMIUM", "/usr/bin/chromium-headless-shell")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
]
HANDLER_PASSWORD = "a handler's long passphrase"

# What the fake camera shows in the suite: a scrolling gradient at 320x240 and 15 fps, from
# a file. Chromium's own fake device honours the caller page's ideal 1280x720 at 30 fps;
# the clip took a tenth off the CPU that tests/e2e/test_call.py's calls use.
FAKE_CAMERA = (320, 240, 15)


def fake_camera_file() -> Path:
    """A looping Y4M clip for `--use-file-for-fake-video-capture`, written once per machine."""
    width, height, fps = FAKE_CAMERA
    path = Path(tempfile.gettempdir()) / f"evr-fake-camera-{width}x{height}-{fps}.y4m"
    if path.exists():
        return path
    luma = bytes(
        (c + r * 3 + (c * r) // 97) % 256 for r in range(height + 256) for c in range(width)
    )
    chroma = bytes([128]) * (width * height // 2)
    frames = [
        b"FRAME\n" + luma[(n * 8) % 256 * width :][: width * height] + chroma
        for n in range(2 * fps)
    ]
    header = f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode()
    partial = path.with_suffix(f".{os.getpid()}.part")
    partial.write_bytes(header + b"".join(frames))
    partial.replace(path)
    return path


def chromium_args() -> list[str]:
    """The flags with the suite's fake camera clip."""
    return [*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={fake_camera_file()}"]


# Every video transceiver offers H.264 only (and RTX), whatever the page preferred: a
# browser that speaks no VP8, as Safari on an older iPhone. Applied at each createOffer,
# after the page's own setCodecPreferences, so it is the last word.
H264_ONLY = """(() => {
    const video = RTCRtpReceiver.getCapabilities("video").codecs.filter((c) => {
        const mime = c.mimeType.toLowerCase();
        return mime === "video/h264" || mime === "video/rtx";
    });
    const createOffer = RTCPeerConnection.prototype.createOffer;
    RTCPeerConnection.prototype.createOffer = function (...args) {
        for (const t of this.getTransceivers()) {
            if (t.receiver.track && t.receiver.track.kind === "video") t.setCodecPreferences(video);
        }
        return createOffer.apply(this, args);
    };
})();"""


def media_context(
    browser: Browser,
    mobile: bool = False,
    camera: bool = True,
    h264_only: bool = False,
    microphone: bool = True,
) -> BrowserContext:
    """A browser profile with the fake camera and microphone granted (or either refused,
    as a phone's settings refuse them); ``h264_only`` makes its peer connections offer
    no video codec but H.264."""
    permissions = [kind for kind, on in (("microphone", microphone), ("camera", camera)) if on]
    options: dict[str, object] = {
        "ignore_https_errors": True,
        "locale": "en-GB",
        "permissions": permissions,
    }
    if mobile:
        options.update(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    context = browser.new_context(**options)  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    # A new profile's first page starts a renderer: generous under three workers.
    context.set_default_navigation_timeout(45_000)
    if not (camera and microphone):
        # The fake UI grants every request: a refused kind is refused here instead, as
        # the browser does when the phone's settings block it (the whole request fails).
        refused = json.dumps([k for k, on in (("audio", microphone), ("video", camera)) if not on])
        context.add_init_script(
            f"""(() => {{
                const refused = {refused};
                const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
                navigator.mediaDevices.getUserMedia = (constraints) =>
                    refused.some((kind) => constraints && constraints[kind])
                        ? Promise.reject(new DOMException("Permission denied", "NotAllowedError"))
                        : real(constraints);
            }})();"""
        )
    if h264_only:
        context.add_init_script(H264_ONLY)
    return context


def signed_in_handler(
    context: BrowserContext,
    appliance: Appliance,
    username: str,
    role: str = "handler",
    *,
    break_glass: bool = False,
) -> Page:
    """An account (a handler unless ``role`` says otherwise) made through the CLI, signed
    in, its first password changed. The CLI (a new Python process) runs only the first
    time a module asks for the account; after that it would only say it already exists.
    ``break_glass``: marked so, as a box with single sign-on needs for a password to work."""
    if username in appliance.accounts:
        return _sign_in(context, appliance, username, HANDLER_PASSWORD)
    password = add_account(appliance, username, role, break_glass=break_glass)
    return first_sign_in(context, appliance, username, password)


def add_account(
    appliance: Appliance, username: str, role: str = "handler", *, break_glass: bool = False
) -> str:
    """Make the account through the CLI (a Python process and an Argon2 hash: seconds
    on a loaded box, so a test may run it in a thread while its browsers get on with
    the call); its first password, or the changed one if it already existed."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance",
            "user",
            "add",
            username,
            "--name",
            "Pat Handler",
            "--role",
            role,
            *(["--break-glass"] if break_glass else []),
        ],
        env={**os.environ, "EVR_DATA_DIR": str(appliance.data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "already exists" in result.stderr:
        return HANDLER_PASSWORD
    assert result.returncode == 0, result.stderr
    return re.search(r"shown once\): (\S+)", result.stdout).group(1)


def first_sign_in(
    context: BrowserContext, appliance: Appliance, username: str, password: str
) -> Page:
    """Sign in an account ``add_account`` made (its first password changed)."""
    appliance.accounts.add(username)
    return _sign_in(context, appliance, username, password)


def _sign_in(context: BrowserContext, appliance: Appliance, username: str, password: str) -> Page:
    page = context.new_page()
    page.goto(appliance.base_url + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    if password != HANDLER_PASSWORD:
        page.get_by_label("Current password").fill(password)
        page.get_by_label("New password", exact=True).fill(HANDLER_PASSWORD)
        page.get_by_label("New password again").fill(HANDLER_PASSWORD)
        page.get_by_role("button", name="Change password").click()
    # A box admin, where the box asks for a second factor, lands on enrolling one.
    landed = re.compile("^(Welcome|Set up your authenticator app)")
    expect(page.get_by_role("heading", name=landed)).to_be_visible()
    return page


def enrol_authenticator(page: Page) -> pyotp.TOTP:
    """On the enrolment page: the key read as a phone's app would scan it, the current
    code confirmed, the ten recovery codes shown; returns the app."""
    expect(page.get_by_role("heading", name="Set up your authenticator app")).to_be_visible()
    app = pyotp.TOTP(page.locator("#totp-secret").inner_text())
    page.get_by_label("Six-digit code").fill(app.now())
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name="Your authenticator is set up")).to_be_visible()
    expect(page.locator(".recovery-codes li")).to_have_count(10)
    return app


def new_link(handler: Page, appliance: Appliance, reference: str) -> str:
    handler.goto(appliance.base_url + "/incidents?new=1")  # the form opened at the top
    handler.get_by_label("CAD reference").fill(reference)
    handler.get_by_label("Caller's name").fill("Jane Marple")
    handler.get_by_label("Caller's mobile number").fill("07700 900123")
    handler.get_by_role("button", name="Create incident").click()
    expect(handler.get_by_role("heading", name=f"Incident {reference}")).to_be_visible()
    answer_checklist(handler)
    handler.get_by_role("button", name="Create video call link").click()
    link = handler.get_by_role("textbox", name="Video call link").input_value()
    assert re.fullmatch(r"https://[^/]+/v/[A-Za-z0-9_-]{43}", link), link
    return link


def answer_checklist(handler: Page, yes: bool = True) -> None:
    """Every eligibility question answered (yes, by default), then recorded."""
    for radio in handler.locator(f"input[type=radio][value={'yes' if yes else 'no'}]").all():
        radio.check()
    handler.get_by_role("button", name="Record eligibility").click()
    expect(handler.locator(".facts")).to_contain_text("eligible" if yes else "ineligible")


def caller_joins(phone: BrowserContext, link: str, recording: bool = True) -> Page:
    page = phone.new_page()
    page.goto(link)
    expect(page).to_have_title("Video call")
    page.get_by_label("I agree to a video call with the police").check()
    if recording:
        page.get_by_label("The call may be recorded").check()
    page.get_by_role("button", name="Continue").click()
    join = page.get_by_role("button", name="Join video call")
    expect(join).to_be_enabled(timeout=20_000)  # the camera check: slow on a loaded box
    join.click()
    expect(page.get_by_text("The officer will join you shortly")).to_be_visible()
    return page


def admit_first_waiting(handler: Page, appliance: Appliance, reference: str) -> None:
    handler.goto(appliance.base_url + "/calls")
    row = handler.locator("#queue tr", has_text=reference)
    expect(row).to_be_visible(timeout=10_000)
    row.get_by_role("link", name="Open call").click()
    handler.get_by_role("button", name="Admit caller").click()
    # The admission is a round trip through the box and both peers: slow on a loaded box.
    expect(handler.locator("#call-state")).to_have_attribute(
        "data-state", "connected", timeout=15_000
    )


def frames_shown(page: Page, selector: str) -> int:
    return page.eval_on_selector(
        selector,
        "v => v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0",
    )


def inbound_packets(page: Page, diagnostics: str, kind: str) -> int:
    return page.evaluate(
        """async ([name, kind]) => {
            const pc = window[name] && window[name].pc;
            if (!pc) return 0;
            let total = 0;
            (await pc.getStats()).forEach((r) => {
                if (r.type === "inbound-rtp" && r.kind === kind) total += r.packetsReceived;
            });
            return total;
        }""",
        [diagnostics, kind],
    )


def wait_rising(read: object, floor: int, timeout: float = 15) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    first = read()  # type: ignore[operator]
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = read()  # type: ignore[operator]
        if now > max(first, floor):
            return first, now
    raise AssertionError(f"did not rise above {max(first, floor)} (stayed at {first})")


def assert_playable(plain: bytes, call_seconds: float) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "plain.webm"
        path.write_bytes(plain)
        _assert_playable(path, call_seconds)


def _assert_playable(path: Path, call_seconds: float) -> None:
    with av.open(str(path)) as container:
        video = container.streams.video
        audio = container.streams.audio
        assert len(video) == 1 and len(audio) >= 1
        frames = sum(1 for _ in container.decode(video=0))
        assert frames > 10
    with av.open(str(path)) as container:
        last = 0.0
        for packet in container.demux():
            if packet.pts is not None:
                last = max(last, float(packet.pts * packet.time_base))
    assert abs(last - call_seconds) <= 0.2 * call_seconds, (last, call_seconds)
