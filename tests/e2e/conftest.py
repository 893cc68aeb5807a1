"""Real-browser fixtures: Debian's chromium driven by Playwright, and `evr serve` as a process.

The helpers they use live in tests/support/browser.py and tests/support/appliance.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.support.appliance import Appliance, running_appliance
from tests.support.browser import CHROMIUM, chromium_args, media_context, signed_in_handler
from tests.support.process import https_get

# pytest-timeout counts a test's fixtures: a module's first test starts `evr serve` and
# the browser, its last stops them, on top of the call itself.
E2E_TIMEOUT = 300


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "e2e" in Path(str(item.path)).parts and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(E2E_TIMEOUT))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed browser test shows the server's last lines: its request log (route,
    status, time) and any event-loop stall with its stack say whether the box or the
    browser was the one that hung."""
    outcome = yield
    report = outcome.get_result()
    appliance = getattr(item, "funcargs", {}).get("appliance")
    if report.failed and isinstance(appliance, Appliance):
        report.sections.append(("evr serve: its last lines", appliance.log_tail(120)))
        report.sections.append(("evr serve: answering now?", _probe(appliance)))


def _probe(appliance: Appliance) -> str:
    started = time.perf_counter()
    try:
        status, _ = https_get(appliance.base_url + "/healthz")
    except OSError as exc:
        return f"/healthz: no answer after {time.perf_counter() - started:.1f} s ({exc})"
    return f"/healthz: {status} in {time.perf_counter() - started:.2f} s"


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
    assert Path(CHROMIUM).exists(), (
        f"{CHROMIUM} missing: make test installs it (Debian's chromium-headless-shell)"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=chromium_args(),
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
