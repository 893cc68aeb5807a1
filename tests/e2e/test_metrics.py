"""/metrics before, during and after a real-browser call."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from playwright.sync_api import Browser, Page, expect
from prometheus_client.parser import text_string_to_metric_families

from tests.support.appliance import Appliance
from tests.support.browser import (
    admit_first_waiting,
    caller_joins,
    frames_shown,
    media_context,
    new_link,
    wait_rising,
)
from tests.support.process import https_get

pytestmark = pytest.mark.e2e


def scrape(appliance: Appliance) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    _, text = https_get(appliance.metrics_url + "/metrics")
    check = subprocess.run(
        [shutil.which("promtool") or "promtool", "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def value(values: dict, name: str, **labels: str) -> float:
    return values.get((name, tuple(sorted(labels.items()))), 0.0)


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
                value(v, "evr_media_frames_per_second", role="caller") > 0
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
