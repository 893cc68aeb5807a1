"""The officer's work on a live call, in real browsers: THRIVE, a statement the caller
signs on the phone, the outcome sent to CAD; a guest as the third party; and a Welsh and
an Arabic caller from the SMS to a signed statement in their language."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, expect
from pypdf import PdfReader

from appliance import i18n
from appliance.config import load_settings
from appliance.services.governance import notice
from appliance.services.record.statements import TYPED_CONFIRMATION
from tests.support.appliance import Appliance, running_appliance
from tests.support.axe import assert_accessible
from tests.support.browser import (
    add_account,
    admit_first_waiting,
    answer_checklist,
    caller_joins,
    first_sign_in,
    frames_shown,
    inbound_packets,
    media_context,
    new_link,
    signed_in_handler,
    wait_rising,
)
from tests.support.cad_receiver import CadReceiver, signature
from tests.support.evidence import opened_in
from tests.support.languages import SHOWN_TEXT, english_shown
from tests.support.sms_gateways import WebhookGateway

pytestmark = pytest.mark.e2e
CAD_SECRET = "wessex-cad-shared-secret-of-32-chars+"
SMS_SECRET = "wessex-sms-gateway-secret-of-32-chars"


@contextlib.contextmanager
def served(*servers: CadReceiver | WebhookGateway) -> Iterator[None]:
    """The force's CAD and SMS gateway on 127.0.0.1, on an event loop in a thread of its
    own (Playwright owns this one)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        for server in servers:
            asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
        yield
    finally:
        for server in servers:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


@pytest.fixture(scope="module")
def sms() -> WebhookGateway:
    """The force's SMS gateway (its webhook contract); started with the CAD."""
    return WebhookGateway(SMS_SECRET)


@pytest.fixture(scope="module")
def cad(sms: WebhookGateway) -> Iterator[CadReceiver]:
    receiver = CadReceiver(CAD_SECRET)
    with served(receiver, sms):
        yield receiver


@pytest.fixture(scope="module")
def appliance(cad: CadReceiver, sms: WebhookGateway) -> Iterator[Appliance]:
    with running_appliance(
        EVR_CAD_WEBHOOK_URL=cad.url,
        EVR_CAD_WEBHOOK_SECRET=CAD_SECRET,
        EVR_CAD_WEBHOOK_BACKOFF_SECONDS="0.5",
        EVR_NOTIFY_ADAPTER="webhook",
        EVR_NOTIFY_WEBHOOK_URL=sms.url,
        EVR_NOTIFY_WEBHOOK_SECRET=SMS_SECRET,
    ) as running:
        yield running


@pytest.fixture
def handler(browser: Browser, appliance: Appliance) -> Iterator[Page]:
    context = media_context(browser)
    try:
        yield signed_in_handler(context, appliance, "pc2001")
    finally:
        context.close()


def wait_for(check: Callable[[], object], what: str, timeout: float = 15) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def draw_signature(page: Page) -> None:
    """Ink the pad with the mouse; the pad is scrolled into view and left to settle
    first, as mouse coordinates are the viewport's."""
    pad = page.locator("#signature-pad")
    # In the middle of the screen: at its edge the call's fixed controls lie over it.
    pad.evaluate("pad => pad.scrollIntoView({block: 'center'})")
    box, settled = pad.bounding_box(), None
    while box != settled:  # a smooth scroll (the banner's button) may still be moving it
        page.wait_for_timeout(100)
        box, settled = pad.bounding_box(), box
    assert box is not None
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x + w * 0.1, y + h * 0.7)
    page.mouse.down()
    for step in range(1, 25):
        page.mouse.move(x + w * (0.1 + 0.035 * step), y + h * (0.5 + 0.3 * ((-1) ** step)))
    page.mouse.up()


def statement_row(appliance: Appliance) -> tuple[str, str, str]:
    with contextlib.closing(sqlite3.connect(appliance.data_dir / "evr.db")) as db:
        row = db.execute(
            "SELECT content_sha256, pdf_sha256, signature_path FROM statements "
            "WHERE state = 'signed'"
        ).fetchone()
    assert row is not None
    return row


def test_thrive_a_signed_statement_and_the_outcome_to_cad(
    handler: Page, phone: BrowserContext, appliance: Appliance, cad: CadReceiver
) -> None:
    link = new_link(handler, appliance, "CAD/E2E/ST1")
    caller = caller_joins(phone, link, recording=False)
    admit_first_waiting(handler, appliance, "CAD/E2E/ST1")

    handler.get_by_role("tab", name="THRIVE").click()
    for part, rating in zip(
        ("threat", "harm", "risk", "investigation", "vulnerability", "engagement"),
        ("low", "medium", "low", "high", "medium", "low"),
        strict=True,
    ):
        handler.locator(f"#thrive-{part}").select_option(rating)
    handler.get_by_role("button", name="Save THRIVE").click()
    expect(handler.locator(".thrive-form [data-ajax-status]")).to_contain_text("version 1")

    handler.get_by_role("tab", name="Statement").click()
    handler.get_by_label("Occupation").fill("Retired teacher")
    handler.get_by_label("Account, in the witness's words").fill(
        "At about 21:40 I heard glass break.\nI saw a man in a grey hoodie leave by the gate."
    )
    handler.get_by_role("button", name="Send to the caller to sign").click()
    expect(handler.locator("#statement-state")).to_contain_text("on the caller's phone")

    expect(caller.locator("#statement-panel")).to_be_visible()
    # The phone says so in a banner, whose button leads to the statement.
    expect(caller.locator("#call-banner")).to_contain_text("Your statement is ready")
    shots = Path(__file__).resolve().parents[2] / "test-artifacts" / "caller"
    shots.mkdir(parents=True, exist_ok=True)
    caller.screenshot(path=str(shots / "10-statement-banner.png"))
    assert_accessible(caller, "connected, the statement's banner")
    caller.get_by_role("button", name="Read statement").click()
    expect(caller.locator("#call-banner")).to_be_hidden()
    expect(caller.locator("#st-account")).to_contain_text("grey hoodie")
    expect(caller.locator("#st-name")).to_have_text("Jane Marple")
    assert_accessible(caller, "the statement to read and sign")
    caller.get_by_role("button", name="Sign statement").click()
    expect(caller.locator("#statement-status")).to_contain_text("Type your full name first")
    expect(caller.get_by_label("Type your full name")).to_be_focused()
    caller.get_by_label("Type your full name").fill("Jane Marple")
    caller.get_by_role("button", name="Sign statement").click()
    expect(caller.locator("#statement-status")).to_contain_text("Draw your signature in the box")
    draw_signature(caller)
    caller.get_by_role("button", name="Sign statement").click()
    # The PDF is rendered and sealed before the answer: give a loaded box its time.
    expect(caller.locator("#statement-status")).to_contain_text(
        "You signed this statement as Jane Marple", timeout=20_000
    )
    assert_accessible(caller, "the statement signed")
    expect(handler.locator("#statement-state")).to_contain_text("signed by Jane Marple")
    pdf_link = handler.locator("#statement-pdf a")
    expect(pdf_link).to_be_visible()

    content_sha256, pdf_sha256, signature_path = statement_row(appliance)
    response = handler.request.get(appliance.base_url + pdf_link.get_attribute("href"))
    assert response.ok and response.headers["content-type"] == "application/pdf"
    pdf = response.body()
    assert hashlib.sha256(pdf).hexdigest() == pdf_sha256
    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(" ".join((p.extract_text() or "") for p in reader.pages).split())
    assert "Jane Marple" in text and "grey hoodie" in text
    assert content_sha256 in text.replace(" ", "")
    [image] = [image for p in reader.pages for image in p.images]
    with Image.open(io.BytesIO(opened_in(appliance.data_dir, signature_path))) as drawn:
        signed = drawn.convert("LA")
    assert image.image.size == signed.size
    inked = sum(1 for lum, alpha in signed.get_flattened_data() if alpha > 128 and lum < 160)
    assert inked > 200, "the drawn signature did not reach the PDF"

    # Signing again from the phone is refused; the first signature stands.
    again = caller.evaluate(
        """async () => {
            const root = document.getElementById("caller");
            const panel = document.getElementById("statement-panel");
            const base = "/v/" + root.dataset.token + "/statement";
            const r = await fetch(base, {credentials: "same-origin"});
            const id = (await r.json()).statement.id;
            const s = await fetch(base + "/" + id + "/sign", {
                method: "POST", credentials: "same-origin",
                headers: {"Content-Type": "application/json", "X-CSRF-Token": panel.dataset.csrf},
                body: JSON.stringify({name: "Someone Else",
                    signature: document.getElementById("signature-pad").toDataURL("image/png")}),
            });
            return [s.status, (await s.json()).error];
        }"""
    )
    assert again == [409, "this statement is already signed"]
    assert statement_row(appliance)[:2] == (content_sha256, pdf_sha256)

    handler.get_by_role("tab", name="Outcome").click()
    handler.locator("#outcome-code").select_option("resolved_on_call")
    handler.get_by_label("No, it was dealt with by video").check()
    handler.get_by_role("button", name="Save outcome").click()
    expect(handler.locator("#outcome-code ~ [data-ajax-status]")).to_have_text("Outcome saved.")

    wanted = {"call.connected", "statement.signed", "incident.outcome"}
    wait_for(lambda: wanted <= {e["event"] for e in cad.events.values()}, "events at the CAD")
    assert cad.violations == []
    for attempt in cad.attempts:
        assert attempt.signature == signature(CAD_SECRET.encode(), attempt.timestamp, attempt.body)
    by_event = {e["event"]: e for e in cad.events.values()}
    assert by_event["incident.outcome"]["data"]["outcome"]["code"] == "resolved_on_call"
    assert by_event["incident.outcome"]["data"]["outcome"]["deploymentNeeded"] is False
    assert by_event["statement.signed"]["data"]["statement"]["contentSha256"] == content_sha256
    assert by_event["statement.signed"]["incident"]["cadReference"] == "CAD/E2E/ST1"


def audio_slots(page: Page, diagnostics: str) -> list[int]:
    """Audio packets received on each receiving audio slot, in transceiver order."""
    return page.evaluate(
        """async (name) => {
            const pc = window[name] && window[name].pc;
            if (!pc) return [];
            const counts = [];
            for (const t of pc.getTransceivers()) {
                if (t.receiver.track.kind !== "audio") continue;
                let packets = 0;
                (await t.receiver.getStats()).forEach((r) => {
                    if (r.type === "inbound-rtp") packets += r.packetsReceived;
                });
                counts.push(packets);
            }
            return counts;
        }""",
        diagnostics,
    )


def rising_slots(page: Page, diagnostics: str, slots: int = 2, timeout: float = 20) -> None:
    first = audio_slots(page, diagnostics)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = audio_slots(page, diagnostics)
        if len(now) >= slots and all(now[i] > first[i] + 10 for i in range(slots)):
            return
    raise AssertionError(f"{diagnostics}: audio slots did not all rise: {first} → {now}")


def invite_guest(handler: Page, role: str, name: str) -> str:
    handler.get_by_label("Role", exact=True).select_option(role)
    handler.get_by_label("Name", exact=True).fill(name)
    status = handler.locator("#guest-status")
    status.evaluate("p => { p.textContent = ''; }")  # the last invite's answer
    handler.get_by_role("button", name="Make a guest link").click()
    # The box answers "Link ready." or says why not; slow on a loaded box.
    expect(status).to_have_text("Link ready.", timeout=20_000)
    expect(handler.locator("#guest-list")).to_contain_text(name)
    link_box = handler.get_by_label("One-call link for the guest")
    expect(link_box).to_have_value(re.compile(r"^https://[^/]+/g/[A-Za-z0-9_-]{43}$"))
    return link_box.input_value()


def guest_joins(
    browser: Browser, appliance: Appliance, link: str, label: str, check: bool
) -> tuple[BrowserContext, Page]:
    context = media_context(browser)
    guest = context.new_page()
    guest.goto(link)
    if check:
        assert_accessible(guest, "guest: the link opened, Join offered")
    guest.get_by_role("button", name="Join").click()  # the explicit Join binds the link
    expect(guest.get_by_text(f"You are joining as {label}")).to_be_visible()
    if check:
        assert_accessible(guest, "guest: joining")
    join = guest.get_by_role("button", name="Join")
    expect(join).to_be_enabled()
    join.click()
    try:
        expect(guest.locator("#guest-call")).to_be_visible(timeout=20_000)  # slow under load
    except AssertionError as failed:
        raise AssertionError(f"{failed}\n{appliance.log_tail()}") from None
    return context, guest


def recording_tracks(appliance: Appliance) -> dict[str, list[str]]:
    """Track → the names it held, from the recording's audit record (`recording.finished`)."""
    with contextlib.closing(sqlite3.connect(appliance.data_dir / "evr.db")) as db:
        query = "SELECT detail FROM audit_events WHERE action = 'recording.finished'"
        rows = db.execute(query).fetchall()
    if not rows:
        return {}
    detail = json.loads(rows[-1][0])
    return {
        t["track"]: [h.get("name", h["role"]) for h in t["held"]] for t in detail.get("tracks", [])
    }


def test_four_parties_hear_each_other_and_removing_a_guest_ends_only_their_leg(
    browser: Browser, handler: Page, phone: BrowserContext, appliance: Appliance
) -> None:
    """Caller, handler, an interpreter and a second officer. Every page offered its guest
    slots when it joined, so both guests arrive without renegotiating anyone; each page
    hears the three others on slots of their own. Removing the interpreter silences only
    their slot. The caller agreed to recording, so the recording's record names both
    guests' tracks (`guests_recorded` is on by default)."""
    link = new_link(handler, appliance, "CAD/E2E/G1")
    caller = caller_joins(phone, link, recording=True)
    admit_first_waiting(handler, appliance, "CAD/E2E/G1")
    caller_pc = caller.evaluate_handle("() => window.evrCaller.pc")

    ana_link = invite_guest(handler, "interpreter", "Ana Silva")
    byrne_link = invite_guest(handler, "second_officer", "PC 12 Byrne")
    contexts = []
    try:
        context, ana = guest_joins(browser, appliance, ana_link, "Interpreter", check=True)
        contexts.append(context)
        assert_accessible(ana, "guest: on the call")
        context, byrne = guest_joins(browser, appliance, byrne_link, "Second officer", check=False)
        contexts.append(context)

        expect(caller.locator("#guest-notice")).to_have_text(
            "Also on the call: Interpreter, Ana Silva; Second officer, PC 12 Byrne.",
            timeout=20_000,
        )
        expect(handler.locator("#guest-caption")).to_have_text("Interpreter (Ana Silva)")
        expect(handler.locator("figure[data-leg] figcaption")).to_have_text(
            ["Interpreter (Ana Silva)", "Second officer (PC 12 Byrne)"], timeout=20_000
        )
        expect(ana.locator("figure[data-leg] figcaption")).to_have_text(
            "Second officer (PC 12 Byrne)"
        )

        # Each receives the three others: audio slots 1 to 3 all carry packets.
        rising_slots(handler, "evrConsole", 3)  # caller, Ana, Byrne
        rising_slots(caller, "evrCaller", 3)  # officer, Ana, Byrne
        rising_slots(ana, "evrGuest", 3)  # caller, officer, Byrne
        rising_slots(byrne, "evrGuest", 3)  # caller, officer, Ana
        # The caller's connection is the one it joined with: no new offer was made.
        assert caller.evaluate("pc => pc === window.evrCaller.pc", caller_pc)

        handler.locator("#guest-list li", has_text="Ana Silva").get_by_role(
            "button", name="Remove"
        ).click()
        expect(
            ana.get_by_role("heading", name="The officer ended your part in the call")
        ).to_be_visible(timeout=20_000)
        assert_accessible(ana, "guest: removed from the call")
        expect(caller.locator("#guest-notice")).to_have_text(
            "Also on the call: Second officer, PC 12 Byrne.", timeout=20_000
        )

        time.sleep(1.5)  # what was in flight arrives
        pages = {"console": (handler, "evrConsole"), "caller": (caller, "evrCaller")}
        before = {side: audio_slots(*page) for side, page in pages.items()}
        time.sleep(2.5)
        after = {side: audio_slots(*page) for side, page in pages.items()}
        for side in pages:
            assert after[side][0] > before[side][0] + 10, (side, before, after)  # call goes on
            assert after[side][1] == before[side][1], (side, before, after)  # Ana's leg ended
            assert after[side][2] > before[side][2] + 10, (side, before, after)  # Byrne's not
        expect(handler.locator("#call-state")).to_have_attribute("data-state", "connected")

        response = ana.goto(ana_link)
        assert response is not None and response.status == 410
    finally:
        for context in contexts:
            context.close()
    handler.get_by_role("button", name="End call").click()
    expect(caller.get_by_role("heading", name="The call has ended")).to_be_visible()
    tracks = wait_for(lambda: recording_tracks(appliance), "the recording's record")
    assert tracks == {
        "video": ["caller"],
        "caller_audio": ["caller"],
        "handler_audio": ["handler"],
        "guest_audio_1": ["Ana Silva"],
        "guest_audio_2": ["PC 12 Byrne"],
    }, tracks


def audited(appliance: Appliance, action: str) -> int:
    with contextlib.closing(sqlite3.connect(appliance.data_dir / "evr.db")) as db:
        query = "SELECT count(*) FROM audit_events WHERE action = ?"
        return int(db.execute(query, (action,)).fetchone()[0])


def test_a_supervisor_observes_takes_over_and_hands_the_call_back(
    browser: Browser, handler: Page, phone: BrowserContext, appliance: Appliance
) -> None:
    """Three browsers. While the supervisor observes, the handler's console keeps its
    socket and its caller's frames keep rising, the supervisor's receive-only leg shows
    the caller, and the audit trail has the observation. The supervisor then takes the
    call over with a reason (the handler's console says so, read-only) and hands it back
    with a note; across both changes the caller's connection is the same one and the
    officer's audio it receives keeps rising."""
    with ThreadPoolExecutor(1) as pool:  # the CLI's account while the call starts
        made = pool.submit(add_account, appliance, "sgt2001", "supervisor")
        link = new_link(handler, appliance, "CAD/E2E/SUP1")
        caller = caller_joins(phone, link, recording=False)
        admit_first_waiting(handler, appliance, "CAD/E2E/SUP1")
        password = made.result(timeout=120)
    console_url = handler.url
    caller_pc = caller.evaluate_handle("() => window.evrCaller.pc")

    context = media_context(browser)
    try:
        supervisor = first_sign_in(context, appliance, "sgt2001", password)
        supervisor.goto(console_url)
        expect(supervisor.locator("#console-notice")).to_contain_text("You are observing")
        wait_rising(lambda: frames_shown(supervisor, "#remote-video"), 5, timeout=30)
        expect(handler.locator("#observers")).to_contain_text("Observing this call")
        expect(caller.locator("#guest-notice")).to_contain_text("Also watching: a supervisor")
        wait_rising(lambda: frames_shown(handler, "#remote-video"), 5)
        assert handler.evaluate("() => window.evrConsole.closed") is None  # socket never closed
        expect(handler.locator("#call-state")).to_have_attribute("data-state", "connected")
        assert audited(appliance, "call.observed") == 1
        shots = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
        shots.mkdir(parents=True, exist_ok=True)
        supervisor.screenshot(path=str(shots / "observing.png"))

        heard = inbound_packets(caller, "evrCaller", "audio")
        supervisor.get_by_label("Reason for taking over").fill("caller at risk, escalating")
        supervisor.get_by_role("button", name="Take over the call").click()
        expect(handler.locator("#console-notice")).to_contain_text(
            "has taken over this call. Reason: caller at risk, escalating", timeout=20_000
        )
        expect(handler.locator("#end")).to_be_disabled()
        handler.screenshot(path=str(shots / "taken-over.png"))
        expect(supervisor.locator("#end")).to_be_enabled(timeout=20_000)  # the handler now
        wait_rising(lambda: inbound_packets(caller, "evrCaller", "audio"), heard + 50, 20)
        assert audited(appliance, "call.taken_over") == 1

        heard = inbound_packets(caller, "evrCaller", "audio")
        supervisor.locator("#handover summary").click()
        supervisor.locator("#handover-to").select_option("pc2001")
        supervisor.get_by_label("Note for them").fill("back to you, risk assessed")
        supervisor.get_by_role("button", name="Offer the call").click()
        expect(supervisor.locator("#handover-status")).to_contain_text("Offered to")
        handler.goto(appliance.base_url + "/calls")
        offered = handler.locator("#handover-list li", has_text="back to you, risk assessed")
        offered.get_by_role("button", name="Take this call").click()
        expect(handler.locator("#call-state")).to_have_attribute("data-state", "connected")
        expect(handler.locator("#end")).to_be_enabled(timeout=20_000)
        expect(supervisor.locator("#console-notice")).to_contain_text(
            "has taken the call you handed over"
        )
        wait_rising(lambda: inbound_packets(caller, "evrCaller", "audio"), heard + 50, 20)
        assert caller.evaluate("(pc) => pc === window.evrCaller.pc", caller_pc)  # same connection
        assert audited(appliance, "call.handed_over") == 1
    finally:
        context.close()
    handler.get_by_role("button", name="End call").click()
    expect(caller.get_by_role("heading", name="The call has ended")).to_be_visible()


def test_a_viewer_link_shows_the_caller_and_is_refused_after_the_call_ends(
    browser: Browser, handler: Page, phone: BrowserContext, appliance: Appliance
) -> None:
    """The handler makes a view-only link; on its own page (a responder's phone) it is
    bound by Watch and shows the caller's video, receiving only; the console lists the
    viewer as watching. The call ends: the viewer's page says so, and the link is then
    refused (410)."""
    link = new_link(handler, appliance, "CAD/E2E/VIEW1")
    caller = caller_joins(phone, link, recording=False)
    admit_first_waiting(handler, appliance, "CAD/E2E/VIEW1")

    handler.get_by_label("Who is it for (name and role)").fill("PC 4411 Patel, attending")
    handler.get_by_role("button", name="Make a viewing link").click()
    link_box = handler.get_by_label("Viewing link (one device, this call only)")
    expect(link_box).to_have_value(
        re.compile(r"^https://[^/]+/w/[A-Za-z0-9_-]+/[A-Za-z0-9_-]{43}$")
    )
    viewer_link = link_box.input_value()

    context = media_context(browser)
    try:
        viewer = context.new_page()
        viewer.goto(viewer_link)
        assert_accessible(viewer, "viewer: the link opened, Watch offered")
        # Watch binds the link to this phone (generous: the box is shared under load).
        viewer.get_by_role("button", name="Watch").click(timeout=45_000)
        wait_rising(lambda: frames_shown(viewer, "#viewer-remote"), 5, timeout=30)
        assert_accessible(viewer, "viewer: watching the caller")
        assert inbound_packets(viewer, "evrViewer", "audio") > 0  # the caller heard too
        senders = viewer.evaluate(
            "() => window.evrViewer.pc.getSenders().filter((s) => s.track).length"
        )
        assert senders == 0  # receive only: nothing sent
        expect(handler.locator("#viewer-list")).to_contain_text("watching", timeout=30_000)
        expect(caller.locator("#guest-notice")).to_contain_text(
            "Also watching: an officer responding to your report, PC 4411 Patel"
        )
        assert audited(appliance, "viewer.opened") == 1

        handler.get_by_role("button", name="End call").click()
        expect(caller.get_by_role("heading", name="The call has ended")).to_be_visible(
            timeout=30_000
        )
        expect(viewer.get_by_role("heading", name="The call has ended")).to_be_visible(
            timeout=30_000
        )
        assert_accessible(viewer, "viewer: the call ended")
        response = viewer.goto(viewer_link)
        assert response is not None and response.status == 410
        assert audited(appliance, "viewer.link_refused") == 1
    finally:
        context.close()


# A sentence of each offered language's declaration that the PDF must hold (fpdf2 breaks
# lines, so not the whole).
DECLARED = {
    "cy": "Mae'r datganiad hwn yn wir",
    "ar": "هذه الإفادة صحيحة",
}


def shown_as_data() -> tuple[str, ...]:
    """The words the caller's pages show as given, in any language: the force's, the
    officer's and the caller's names, the account the officer typed, the language
    switch's names, and the operator's privacy-notice settings (their defaults here)."""
    facts = notice.of(load_settings(force_name="Wessex Police"))
    return (
        "Wessex Police",
        "Pat Handler",
        "Jane Marple",
        "I saw the van at 21:40.",
        *(language.name for language in i18n.LANGUAGES.values()),
        facts.controller,
        facts.dpo_contact,
        *(p.name for p in facts.processors),
        *(p.does for p in facts.processors),
    )


def assert_in_language(page: Page, code: str, state: str) -> None:
    """``state`` of the caller's page: its lang and dir are the language's, it shows none
    of the English of a message the catalogue translates, and axe finds nothing."""
    language = i18n.language(code)
    html = page.locator("html")
    expect(html).to_have_attribute("lang", language.html_lang)
    expect(html).to_have_attribute("dir", "rtl" if language.rtl else "ltr")
    shown = english_shown(page.evaluate(SHOWN_TEXT), code, shown_as_data())
    assert shown == [], f"{code}, {state}: English shown: {shown}"
    assert_accessible(page, f"{code}, {state}")


def choices_mirrored(page: Page) -> list[bool]:
    """For each visible radio or checkbox in a label: whether it sits right of its text
    (where a right-to-left page puts the start of a line)."""
    return page.evaluate(
        """() => [...document.querySelectorAll("label.choice")]
            .filter((label) => label.getClientRects().length > 0)
            .map((label) => {
                const box = label.querySelector("input").getBoundingClientRect();
                const range = document.createRange();
                range.selectNodeContents(label);
                range.setStartAfter(label.querySelector("input"));
                const text = range.getBoundingClientRect();
                return box.left + box.width / 2 > text.left + text.width / 2;
            })"""
    )


@pytest.mark.parametrize("code", ["cy", "ar"])
def test_a_caller_in_welsh_or_arabic_from_the_sms_to_a_signed_statement(
    handler: Page, phone: BrowserContext, appliance: Appliance, sms: WebhookGateway, code: str
) -> None:
    """The handler sends the link by SMS in Welsh (then Arabic); the force's gateway
    receives it in that language, and the caller opens the link from it. Consent, waiting,
    connected, the statement to sign and the statement signed each carry the language's
    lang and dir, show no English a catalogue translates, and pass axe; on the Arabic
    pages the choices' boxes sit right of their text (mirrored), on the Welsh ones left.
    The caller signs by the typed name; the PDF read back holds the translated
    declaration and says in which language it was read and signed."""
    _ = i18n.translator(code)
    language = i18n.language(code)
    reference = f"CAD/E2E/LANG-{code}"
    handler.goto(appliance.base_url + "/incidents?new=1")
    handler.get_by_label("CAD reference").fill(reference)
    handler.get_by_label("Caller's name").fill("Jane Marple")
    handler.get_by_label("Caller's mobile number").fill("07700 900123")
    handler.get_by_role("button", name="Create incident").click()
    answer_checklist(handler)
    by_sms = handler.locator("form", has=handler.locator("input[name=channel][value=sms]"))
    by_sms.get_by_label("Caller's language").select_option(code)
    by_sms.get_by_label("It is safe to contact the caller on this number now").check()
    before = len(sms.accepted)
    by_sms.get_by_role("button", name="Send link by SMS").click()
    wait_for(lambda: len(sms.accepted) > before, "the SMS at the gateway")
    assert sms.violations == []
    message = sms.accepted[-1]
    assert message["to"] == "+447700900123"
    opening = _("{force_name}: here is the link for your video call: {link}").split("{link}")[0]
    assert message["body"].startswith(opening.format(force_name="Wessex Police")), message
    link = re.search(r"https://\S+/v/[A-Za-z0-9_-]{43}", message["body"]).group(0)

    caller = phone.new_page()
    caller.goto(link)
    expect(caller.get_by_role("button", name=_("Continue"))).to_be_visible()
    assert_in_language(caller, code, "consent")
    assert all(choices_mirrored(caller)) if language.rtl else not any(choices_mirrored(caller))
    caller.get_by_label(_("Yes, I agree to a video call with the police")).check()
    caller.get_by_role("button", name=_("Continue")).click()
    join = caller.get_by_role("button", name=_("Join video call"))
    expect(join).to_be_enabled(timeout=15_000)  # the camera starts first
    join.click()
    waiting = _("You are connected. The officer will join you shortly. Keep this page open.")
    expect(caller.get_by_text(waiting)).to_be_visible(timeout=20_000)
    assert_in_language(caller, code, "waiting")

    admit_first_waiting(handler, appliance, reference)
    expect(handler.locator("#caller-language")).to_have_text(language.name)
    expect(caller.get_by_role("button", name=_("End call"))).to_be_visible(timeout=20_000)
    assert_in_language(caller, code, "connected")
    if language.rtl:  # the timer's digits run left to right inside the mirrored bar
        assert (
            caller.locator(".call-bar__timer").evaluate("e => getComputedStyle(e).direction")
            == "ltr"
        )

    handler.get_by_role("tab", name="Statement").click(timeout=30_000)
    handler.get_by_label("Account, in the witness's words").fill("I saw the van at 21:40.")
    handler.get_by_role("button", name="Send to the caller to sign").click()
    # The banner's "Read statement" only scrolls to the panel, and goes once it is seen.
    expect(caller.locator("#st-account")).to_contain_text("I saw the van", timeout=20_000)
    caller.locator("#statement-panel").scroll_into_view_if_needed()
    caller.get_by_label(_("Type your full name")).fill("Jane Marple")
    caller.get_by_label(_("Sign by my typed name, without drawing")).check()
    caller.get_by_label(_(TYPED_CONFIRMATION)).check()
    assert_in_language(caller, code, "the statement to sign")
    caller.get_by_role("button", name=_("Sign statement")).click()
    signed = _("You signed this statement as %(name)s by typing your name. Thank you.")
    expect(caller.locator("#statement-status")).to_contain_text(
        signed % {"name": "Jane Marple"}, timeout=20_000
    )
    assert_in_language(caller, code, "the statement signed")

    pdf_link = handler.locator("#statement-pdf a")
    expect(pdf_link).to_be_visible(timeout=20_000)
    response = handler.request.get(appliance.base_url + pdf_link.get_attribute("href"))
    assert response.ok
    reader = PdfReader(io.BytesIO(response.body()))
    text = " ".join(" ".join((p.extract_text() or "") for p in reader.pages).split())
    read_in = f"{language.name} ({code})"
    if language.rtl:
        # Shaped by HarfBuzz, the Arabic reads back in its logical order; the line's
        # English half sits where the bidi algorithm puts it, so only its words are held.
        assert DECLARED[code] in text, text
        assert "Read and signed in" in text and language.name in text, text
    else:
        assert DECLARED[code] in text, text
        assert f"Read and signed in: {read_in}" in text, text
        assert _("Read and signed in: %(language)s") % {"language": read_in} in text, text
    handler.get_by_role("button", name="End call").click()
    expect(caller.get_by_role("heading", name=_("The call has ended"))).to_be_visible()
