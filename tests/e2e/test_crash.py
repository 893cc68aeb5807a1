"""SIGKILL during a recorded call: the recording plays up to the kill; the next start
marks the call failed and keeps the partial recording, hashed.

The caller's Chromium offers H.264 only (as Safari on an older iPhone may): the call
reaches the console, the recording is Matroska (``.mkv``, WebM cannot hold H.264) and
the restart's recovery finds it under that name."""

from __future__ import annotations

import hashlib
import io
import signal
import sqlite3
import time

import av
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
from tests.support.evidence import opened_in
from tests.support.process import OutputDrain, start_serve, wait_healthy

pytestmark = pytest.mark.e2e


def test_a_killed_appliance_keeps_the_recording_and_fails_the_call(
    browser: Browser, handler: Page, appliance: Appliance
) -> None:
    link = new_link(handler, appliance, "CAD/CRASH/1")
    phone = media_context(browser, mobile=True, h264_only=True)
    try:
        caller_joins(phone, link)
        admit_first_waiting(handler, appliance, "CAD/CRASH/1")
        wait_rising(lambda: frames_shown(handler, "#remote-video"), floor=5)
        recording_began = time.monotonic()
        time.sleep(5)
        appliance.process.send_signal(signal.SIGKILL)
        appliance.process.wait(timeout=10)
        killed_after = time.monotonic() - recording_began
    finally:
        phone.close()

    assert not list((appliance.data_dir / "calls").glob("*/recording-*.webm"))
    [recording] = list((appliance.data_dir / "calls").glob("*/recording-*.mkv"))
    plain = opened_in(appliance.data_dir, recording)  # sealed: only whole chunks, unfinished
    assert plain[:32] not in recording.read_bytes()
    source = io.BytesIO(plain)
    with av.open(source) as container:
        assert "matroska" in container.format.name
        assert [s.codec_context.name for s in container.streams.video] == ["h264"]
        assert container.streams.audio
        last = 0.0
        for packet in container.demux():
            if packet.pts is not None:
                last = max(last, float(packet.pts * packet.time_base))
    decoded = sum(1 for _ in av.open(io.BytesIO(plain)).decode(video=0))
    assert decoded > 10
    assert killed_after - last < 4.0, (last, killed_after)

    restarted = start_serve(appliance.data_dir.parent, **appliance.env)
    restarted_output = OutputDrain(restarted)
    try:
        wait_healthy(appliance.base_url, restarted)
        with sqlite3.connect(appliance.data_dir / "evr.db") as db:
            state, reason = db.execute(
                "SELECT state, end_reason FROM calls c JOIN incidents i ON i.id = c.incident_id "
                "WHERE i.cad_reference = 'CAD/CRASH/1'"
            ).fetchone()
            status, sha256, size, path = db.execute(
                "SELECT status, sha256, size_bytes, path FROM recordings"
            ).fetchone()
    finally:
        appliance.process, appliance.output = restarted, restarted_output
    assert (state, reason) == ("failed", "appliance_restarted")
    assert status == "partial" and path == str(recording)
    assert sha256 == hashlib.sha256(plain).hexdigest()
    assert size == len(plain)
    expect(handler.locator("#call-state")).not_to_have_attribute(
        "data-state", "connected", timeout=20_000
    )
