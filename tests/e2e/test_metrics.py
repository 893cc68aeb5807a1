"""/metrics before, during and after a real-browser call."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.appliance import Appliance
from tests.support.browser import (
    admit_first_waiting,
    caller_joins,
    frames_shown,
    media_context,
    new_link,
    wait_rising,
)
from tests.support.metrics import Samples, value
from tests.support.metrics import scrape as scrape_metrics

pytestmark = pytest.mark.e2e


def scrape(appliance: Appliance) -> Samples:
    return scrape_metrics(appliance, promtool=True)


def wait_for(appliance: Appliance, check: object, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        values = scrape(appliance)
        if check(values) or time.monotonic() > deadline:  # type: ignore[operator]
            return values
        time.sleep(0.5)


def test_metrics_follow_a_call(browser: Browser, handler: Page, appliance: Appliance) -> None:
    before = scrape(appliance)
    assert value(before, "evr_calls_active") == 0

    link = new_link(handler, appliance, "CAD/MET/1")
    phone = media_context(browser, mobile=True)
    try:
        caller_joins(phone, link)
        queued = wait_for(appliance, lambda v: value(v, "evr_queue_length") == 1)
        assert value(queued, "evr_queue_length") == 1
        admit_first_waiting(handler, appliance, "CAD/MET/1")
        wait_rising(lambda: frames_shown(handler, "#remote-video"), floor=5)

        during = wait_for(
            appliance,
            lambda v: (
                # the fake camera sends 15 fps; a sample taken while a loaded box starved
                # the relay can read 1 or 2, so the check waits for a sample of the flow
                value(v, "evr_media_frames_per_second", role="caller") > 5
                and value(v, "evr_calls_active") == 1
                # a loaded machine may sample before 10 kB have flowed each way
                and all(
                    value(v, "evr_media_bytes_total", role=r, direction=d)
                    - value(before, "evr_media_bytes_total", role=r, direction=d)
                    > 10_000
                    for r, d in (("caller", "received"), ("handler", "sent"))
                )
            ),
        )
        assert value(during, "evr_calls_active") == 1
        assert value(during, "evr_queue_length") == 0
        assert value(during, "evr_call_setup_seconds_count") == (
            value(before, "evr_call_setup_seconds_count") + 1
        )
        assert value(during, "evr_media_frames_per_second", role="caller") > 5
        for role, direction in (("caller", "received"), ("handler", "sent")):
            grew = value(during, "evr_media_bytes_total", role=role, direction=direction) - value(
                before, "evr_media_bytes_total", role=role, direction=direction
            )
            assert grew > 10_000, (role, direction, grew)
        assert value(during, "evr_invites_sent_total", channel="link") == (
            value(before, "evr_invites_sent_total", channel="link") + 1
        )

        handler.get_by_role("button", name="End call").click()
        expect(handler.locator("#call-state")).to_have_attribute("data-state", "ended")
    finally:
        phone.close()

    after = wait_for(appliance, lambda v: value(v, "evr_calls_active") == 0)
    assert value(after, "evr_calls_active") == 0
    assert value(after, "evr_calls_ended_total", state="ended") == (
        value(before, "evr_calls_ended_total", state="ended") + 1
    )
    assert value(after, "evr_call_duration_seconds_count") == (
        value(before, "evr_call_duration_seconds_count") + 1
    )
    assert value(after, "evr_media_packets_total", role="caller", direction="received") > 100
    assert value(after, "evr_storage_free_bytes") > 0
    assert value(after, "evr_tls_certificate_expiry_timestamp_seconds") > time.time()
