"""Fault: the disk holding the media fills during a recorded call.

The data dir is a 512 KiB tmpfs the test mounts (as root; skipped otherwise): room for two
of the recording's 256 KiB sealed chunks. The database lives elsewhere. The call must go
on, the recording be kept as far as it was sealed and marked incomplete, the alert metric
rise, and nothing else be lost.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from appliance.config import load_settings
from appliance.db import Database
from appliance.models import Role
from tests.support.appliance import Appliance, running_appliance
from tests.support.browser import (
    admit_first_waiting,
    caller_joins,
    frames_shown,
    media_context,
    new_link,
    wait_rising,
)
from tests.support.evidence import opened
from tests.support.process import https_get
from tests.support.staff import PASSWORD, add_user

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def appliance() -> Iterator[Appliance]:
    if os.geteuid() != 0:
        pytest.skip("mounting the small tmpfs that fills up needs root")
    outside = Path(tempfile.mkdtemp(prefix="evr-diskfull-"))
    media = outside / "media"
    media.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", str(media)], check=True
    )
    try:
        with running_appliance(
            EVR_DATA_DIR=str(media), EVR_DATABASE_URL=f"sqlite:///{outside / 'evr.db'}"
        ) as running:
            running.data_dir = media  # running_appliance names its own default
            yield running
    finally:
        subprocess.run(["umount", "-l", str(media)], check=False)


def metric(appliance: Appliance, name: str) -> float:
    _, body = https_get(appliance.metrics_url + "/metrics")
    found = re.search(rf"^{name} (\S+)$", body, re.M)
    return float(found.group(1)) if found else 0.0


def test_a_full_disk_cuts_the_recording_not_the_call(
    browser: Browser, handler: Page, appliance: Appliance
) -> None:
    assert metric(appliance, "evr_recordings_incomplete_total") == 0
    link = new_link(handler, appliance, "CAD/FULL/1")
    phone = media_context(browser, mobile=True)
    try:
        caller = caller_joins(phone, link)
        admit_first_waiting(handler, appliance, "CAD/FULL/1")
        wait_rising(lambda: frames_shown(handler, "#remote-video"), floor=5)
        deadline = time.monotonic() + 90
        while metric(appliance, "evr_recordings_incomplete_total") < 1:
            assert time.monotonic() < deadline, "the disk never filled: " + appliance.log_tail()
            time.sleep(1)
        # The call goes on: video still flows and chat still works.
        expect(handler.locator("#call-state")).to_have_attribute("data-state", "connected")
        wait_rising(lambda: frames_shown(handler, "#remote-video"), floor=5)
        handler.get_by_label("Message to the caller").fill("Still with you")
        handler.get_by_role("button", name="Send", exact=True).click()
        expect(caller.locator("#chat")).to_contain_text("Still with you")
        handler.get_by_role("button", name="End call").click()
        expect(handler.locator("#call-state")).to_have_attribute("data-state", "ended")
    finally:
        phone.close()

    database_url = appliance.env["EVR_DATABASE_URL"]
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
        state, reason = db.execute("SELECT state, end_reason FROM calls").fetchone()
        [(status, sha256, path)] = db.execute("SELECT status, sha256, path FROM recordings")
        [(file_status, file_sha)] = db.execute("SELECT status, sha256 FROM evidence_files")
        chat = [body for (body,) in db.execute("SELECT body FROM call_messages")]
    assert (state, reason) == ("ended", "handler_ended")
    assert status == "partial" and file_status == "incomplete"
    assert "Still with you" in chat
    settings = load_settings(data_dir=appliance.data_dir, database_url=database_url)
    store = Database(database_url)
    try:
        plain = opened(settings, store, path)
    finally:
        store.dispose()
    assert len(plain) > 100_000, "what was sealed before the disk filled is kept"
    assert sha256 == file_sha == hashlib.sha256(plain).hexdigest()
    verify = subprocess.run(
        [sys.executable, "-m", "appliance", "audit", "verify"],
        env={**os.environ, **appliance.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stderr


@pytest.fixture
def handler(browser: Browser, appliance: Appliance) -> Iterator[Page]:
    """A handler made straight in this module's database (kept outside the tmpfs)."""
    db = Database(appliance.env["EVR_DATABASE_URL"])
    try:
        with db.session() as session:
            add_user(session, "pc1001", Role.HANDLER)
    finally:
        db.dispose()
    context = media_context(browser)
    try:
        page = context.new_page()
        page.goto(appliance.base_url + "/login")
        page.get_by_label("Username").fill("pc1001")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Welcome, Pat")).to_be_visible()
        yield page
    finally:
        context.close()
