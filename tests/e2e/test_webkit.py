"""The caller's pages in WebKit (Safari's engine): Debian's WebKitGTK over WebDriver.

One MiniBrowser and one in-process appliance for the module (tests/support/webkit.py says
why WebDriver is spoken over aiohttp). The box's certificate is issued by the test's own
CA, so WebKit loads the pages as a secure context, as Safari would a force's real
certificate. The appliance's public URL is the address WebKit reaches, so the CSP's
`connect-src` names that very `wss://` origin: the socket opening here is the CSP at work.

Debian's WebKitGTK has no RTCPeerConnection, so a call cannot be made in it: the call page
must say what the caller can do instead. The H.264 and media paths are Chromium's tests.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from aiohttp import web
from sqlmodel import select

from appliance.config import load_settings
from appliance.models import Call, Incident, Role
from appliance.services.audit import Actor
from appliance.services.calls import invites, life, states
from appliance.services.record import statements
from appliance.services.record.statements import Witness
from tests.support.live import LiveServer, free_port
from tests.support.pki import TestCa, issue_server
from tests.support.staff import add_incident, add_user
from tests.support.webkit import WebKit, webkit

pytestmark = [
    pytest.mark.sqlite_only(reason="a browser engine's view of the pages, not the database"),
    pytest.mark.asyncio(loop_scope="module"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveServer]:
    """The app in this module's event loop on a certificate from the test's CA, its public
    URL the loopback address WebKit opens, and the quick exit leading to its own privacy
    page (the namespace reaches nothing else)."""
    from appliance.server import prepare
    from appliance.web.app import create_app

    folder = tmp_path_factory.mktemp("webkit-box")
    cert, key = issue_server(TestCa(folder, "force"), "127.0.0.1")
    port = free_port()
    base = f"https://127.0.0.1:{port}"
    settings = load_settings(
        data_dir=folder / "var",
        database_url=module_database_url,
        min_free_bytes=0,
        public_url=base,
        port=port,
        tls_cert=cert,
        tls_key=key,
        quick_exit_url=f"{base}/privacy",
    )
    prepared = await asyncio.to_thread(prepare, settings)
    app = create_app(settings, prepared.db, prepared.keyring)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    try:
        yield LiveServer(settings, prepared.db, base, app)
    finally:
        await runner.cleanup()
        prepared.db.dispose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(
    server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[WebKit]:
    assert server.settings.tls_cert is not None
    async with webkit(
        tmp_path_factory.mktemp("webkit-home"), {"127.0.0.1": server.settings.tls_cert}
    ) as session:
        yield session


@pytest.fixture(scope="module")
def video_link(server: LiveServer) -> str:
    with server.db.session() as session:
        officer = add_user(session, "pc1", Role.HANDLER)
        incident = add_incident(session, officer, "CAD/WK/1")
        _, _, token = invites.create_invite(
            session, Actor("pc1"), incident, officer, timedelta(hours=1)
        )
    return token


def _link(server: LiveServer, kind: str) -> str:
    with server.db.session() as session:
        officer = add_user(session, f"pc-{kind}", Role.HANDLER)
        incident = add_incident(session, officer, f"CAD/WK/{kind}")
        _, _, token = invites.create_invite(
            session, Actor("pc1"), incident, officer, timedelta(hours=1), kind=kind
        )
    return token


async def _until_path(browser: WebKit, path: str) -> None:
    await browser.wait_for(
        f"return location.pathname === {path!r} && document.readyState === 'complete';"
    )


# The page's own socket helper (webrtc.js) opening the caller's signalling socket; any
# securitypolicyviolation (a connect-src refusal) is reported instead.
SIGNAL = """
const done = arguments[arguments.length - 1];
const violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  violations.push(e.violatedDirective + " " + e.blockedURI);
});
let signal = null;
signal = new EVR.Signal("/ws/v/" + encodeURIComponent(arguments[0]), (message) => {
  signal.close();
  done({first: message.type, violations: violations});
}, (status) => { if (status === "closed") done({first: null, violations: violations}); });
"""


async def test_the_call_page_tells_webkit_without_webrtc_what_to_do_and_its_socket_opens(
    server: LiveServer, browser: WebKit, video_link: str
) -> None:
    """Consent in WebKit, then the call page: no RTCPeerConnection in this WebKit, so the
    page shows, in words, the other ways (another browser, photos and videos by a link,
    a call back) instead of a camera check that cannot lead to a call; the camera itself
    still opens under the page's Permissions-Policy (mock devices), and the signalling
    socket opens under the page's real CSP and the box says hello."""
    await browser.go(server.url(f"/v/{video_link}"))
    assert "Can we record the call?" in await browser.text("main")
    await browser.click("#consent_video-yes")
    await browser.click("#consent_recording-no")
    await browser.click("#consent_location-no")
    await browser.click("form button[type=submit]")
    await _until_path(browser, f"/v/{video_link}/call")

    assert await browser.run("return typeof RTCPeerConnection;") == "undefined", (
        "this WebKit has WebRTC now: this test should join a call instead"
    )
    await browser.wait_for("return window.evrCaller && window.evrCaller.state === 'no-webrtc';")
    told = await browser.text("#step-no-webrtc")
    assert "This browser cannot make video calls" in told
    assert "Safari on an iPhone, or Chrome on an Android phone" in told
    assert "send photos or videos instead" in told and "ask for a call back" in told
    assert "Tell the officer on the phone which you would like." in told
    shown = (
        "return [...document.querySelectorAll('section')]"
        ".filter((s) => s.offsetParent).map((s) => s.id);"
    )
    assert await browser.run(shown) == ["step-no-webrtc"]
    assert await browser.run("return window.isSecureContext;") is True

    camera = await browser.run_async(
        "const done = arguments[0]; navigator.mediaDevices.getUserMedia({audio: true, video: true})"
        ".then((s) => { done(s.getTracks().map((t) => t.kind).sort());"
        " s.getTracks().forEach((t) => t.stop()); },"
        " (e) => done(String(e)));"
    )
    assert camera == ["audio", "video"]

    opened = await browser.run_async(SIGNAL, video_link)
    assert opened == {"first": "hello", "violations": []}


async def test_the_statement_and_survey_pages_after_the_call_work_in_webkit(
    server: LiveServer, browser: WebKit, video_link: str
) -> None:
    """The officer sends a statement and ends the call (by the services): the caller's
    statement page fetches and shows it (its script ran under the CSP), and the survey
    page offers its questions."""
    with server.db.session() as session:
        call = session.exec(select(Call)).one()
        officer = add_user(session, "pc2", Role.HANDLER)
        incident = session.get(Incident, call.incident_id)
        assert incident is not None
        if call.state != "waiting":
            states.caller_waiting(session, call, "t")
        life.admit(session, server.settings, call, officer, "t")
        statements.save(
            session,
            Actor("pc2"),
            officer,
            incident,
            Witness.clean("Jane Marple", "", "", "I saw the van at 10."),
            server.settings.statement_declaration,
            call,
        )
        statements.send(session, Actor("pc2"), incident, call)
        life.end(session, server.settings, call, Actor("pc2"), "handler_ended")

    await browser.go(server.url(f"/v/{video_link}/statement/sign"))
    await browser.wait_for("return document.getElementById('st-account').textContent !== '';")
    assert "I saw the van at 10." in await browser.text("#statement-panel")
    assert "Sign statement" in await browser.text("#statement-panel")

    await browser.go(server.url(f"/v/{video_link}/survey"))
    survey = await browser.text("main")
    assert "How did we do?" in survey and "Send answers" in survey


async def test_the_upload_location_and_quick_exit_pages_work_in_webkit(
    server: LiveServer, browser: WebKit
) -> None:
    """A photos-and-videos link and a location link, each through its consent to its
    page; then the quick exit (on a page for a link the box cannot place) leaves for the
    harmless page with nothing left of the page behind."""
    upload = _link(server, invites.UPLOAD)
    await browser.go(server.url(f"/v/{upload}"))
    await browser.click("input[name=consent]")
    await browser.click("form button[type=submit]")
    await _until_path(browser, f"/v/{upload}/upload")
    assert "Send photos and videos" in await browser.text("main")
    assert await browser.run("return document.getElementById('files').type;") == "file"

    where = _link(server, invites.LOCATION)
    await browser.go(server.url(f"/v/{where}"))
    await browser.click("input[name=consent]")
    await browser.click("form button[type=submit]")
    await _until_path(browser, f"/v/{where}/location")
    assert "Share my location" in await browser.text("#share-location")

    await browser.go(server.url("/v/" + "x" * 43))
    await browser.click("#quick-exit")
    await _until_path(browser, "/privacy")
