"""A page that shows a stream before it has loaded still loads.

Chromium holds a page's load event back while a video element has been given a stream
that has not shown a frame (HTML's "delaying-the-load-event flag"), an empty
``new MediaStream()`` included. The call pages give their remote video an empty stream
as they connect, which, when it came before the load event (a reload that rejoins, a
supervisor's console that starts observing at once), kept the page "loading" for the
whole call when the officer's camera was off: a spinner on a phone, and in CI a reload
and a page open that timed out at 45 s. ``EVR.attach`` (static/js/webrtc.js) puts a
stream in only once the page has loaded.

Tried here with the real webrtc.js in a page whose image arrives 1.5 s late: the stream
is given while the page is still loading; direct assignment is the baseline that shows
the test can tell."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Route
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = pytest.mark.e2e

WEBRTC_JS = Path(__file__).resolve().parents[2] / "appliance" / "static" / "js" / "webrtc.js"
PAGE = """<!doctype html><html lang="en"><head><title>probe</title></head><body>
<video id="remote" autoplay playsinline muted></video>
<script src="/webrtc.js"></script>
<script>
  window.loadedAt = null;
  window.addEventListener("load", () => { window.loadedAt = performance.now(); });
  const video = document.getElementById("remote");
  const remote = new MediaStream();  // as the call pages make it: nothing in it yet
  SHOW;
</script>
<img src="/late.png" alt=""></body></html>"""


def open_probe(browser: Browser, show: str) -> tuple[bool, object]:
    """Whether the page's load event came within 6 s, and what the video shows then."""
    page = browser.new_page()

    def serve(route: Route) -> None:
        url = route.request.url
        if url.endswith("/late.png"):
            time.sleep(1.5)
            route.fulfill(status=404, body="")
        elif url.endswith("/webrtc.js"):
            route.fulfill(content_type="text/javascript", body=WEBRTC_JS.read_text())
        else:
            route.fulfill(content_type="text/html", body=PAGE.replace("SHOW", show))

    page.route("http://page-load.test/**", serve)
    try:
        page.goto("http://page-load.test/call", timeout=6_000)
        loaded = True
    except PlaywrightTimeout:
        loaded = False
    shown = page.evaluate("() => document.getElementById('remote').srcObject === remote")
    page.close()
    return loaded, shown


def test_a_stream_given_before_the_load_event_no_longer_holds_it_back(browser: Browser) -> None:
    baseline_loaded, _ = open_probe(browser, "video.srcObject = remote")
    assert not baseline_loaded, "Chromium no longer delays load: EVR.attach may go"
    loaded, shown = open_probe(browser, "EVR.attach(video, remote)")
    assert loaded, "the page never loaded"
    assert shown is True, "the stream was not put in once the page had loaded"
