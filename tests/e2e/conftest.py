"""Real-browser fixtures: Debian's chromium driven by Playwright, and `evr serve` as a process.

Never a downloaded browser: `executable_path` is Debian's `/usr/bin/chromium`, which
`make test` installs. Flags as the spike on this machine found them (docs/development.md).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.conftest import free_port
from tests.support.process import OutputDrain, start_serve, stop, wait_healthy

CHROMIUM = os.environ.get("EVR_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
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


@dataclass
class Appliance:
    base_url: str
    data_dir: Path
    admin_password: str
    process: subprocess.Popen[str]
    env: dict[str, str]
    output: OutputDrain | None = None

    def log_tail(self, lines: int = 60) -> str:
        """The server's last output lines, for an assertion message."""
        return "".join(self.output.lines[-lines:]) if self.output else ""


@contextlib.contextmanager
def running_appliance(**extra_env: str) -> Iterator[Appliance]:
    """`evr serve` in a fresh data dir, on its own port, with the printed admin password."""
    root = Path(tempfile.mkdtemp(prefix="evr-e2e-"))
    port = free_port()
    env = {
        "EVR_DATA_DIR": str(root / "var"),
        "EVR_PORT": str(port),
        "EVR_HOST": "127.0.0.1",
        "EVR_FORCE_NAME": "Wessex Police",
        "EVR_MIN_FREE_BYTES": "0",
        "EVR_MEDIA_ALLOW_LOOPBACK": "true",
        "EVR_PUBLIC_URL": f"https://127.0.0.1:{port}",
        **extra_env,
    }
    appliance = Appliance(
        f"https://127.0.0.1:{port}", root / "var", "", start_serve(root, **env), env
    )
    try:
        appliance.output = OutputDrain(appliance.process)
        appliance.admin_password = appliance.output.wait_for(r"password\s+(\S{20})\s*$").group(1)
        wait_healthy(appliance.base_url, appliance.process)
        yield appliance
    finally:
        stop(appliance.process, appliance.output)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def appliance() -> Iterator[Appliance]:
    with running_appliance() as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One browser for each module.

    Sync Playwright keeps an event loop running in this thread while it lives, which
    the asyncio tests that follow could not share.
    """
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: make test installs Debian's chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(ignore_https_errors=True, locale="en-GB")
    context.set_default_timeout(10_000)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def media_context(browser: Browser, mobile: bool = False, camera: bool = True) -> BrowserContext:
    """A browser profile with the fake camera and microphone granted (or the camera refused)."""
    permissions = ["microphone", "camera"] if camera else ["microphone"]
    options: dict[str, object] = {
        "ignore_https_errors": True,
        "locale": "en-GB",
        "permissions": permissions,
    }
    if mobile:
        options.update(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    context = browser.new_context(**options)  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    if not camera:
        context.add_init_script(
            """(() => {
                const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
                const refuse = () => Promise.reject(
                    new DOMException("Permission denied", "NotAllowedError"));
                navigator.mediaDevices.getUserMedia = (constraints) =>
                    constraints && constraints.video ? refuse() : real(constraints);
            })();"""
        )
    return context


def signed_in_handler(
    context: BrowserContext, appliance: Appliance, username: str, role: str = "handler"
) -> Page:
    """An account (a handler unless ``role`` says otherwise) made through the CLI, signed
    in, its first password changed."""
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
        ],
        env={**os.environ, "EVR_DATA_DIR": str(appliance.data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "already exists" not in result.stderr:
        assert result.returncode == 0, result.stderr
        one_time = re.search(r"shown once\): (\S+)", result.stdout).group(1)
        password = one_time
    else:
        password = HANDLER_PASSWORD
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
    expect(page.get_by_role("heading", name=re.compile("^Welcome"))).to_be_visible()
    return page


@pytest.fixture
def handler(browser: Browser, appliance: Appliance) -> Iterator[Page]:
    """A signed-in handler's page with a fake camera and microphone."""
    context = media_context(browser)
    try:
        yield signed_in_handler(context, appliance, "pc1001")
    finally:
        context.close()


@pytest.fixture
def phone(browser: Browser) -> Iterator[BrowserContext]:
    """A caller's phone: a mobile-sized profile with a fake camera and microphone."""
    context = media_context(browser, mobile=True)
    try:
        yield context
    finally:
        context.close()
