"""The handler's console in a real browser, in one call so the suite stays quick: the link
made once however often the page is reloaded, the waiting count on another page, the state
pill through waiting, live and ended, a ready-made chat message, the video's size and
place while the tools are used at two screen sizes, a snapshot by its key, opened in the
viewer, drawn on and saved as a marked-up copy beside its untouched original, a statement
and a note draft that survive a reload.

Screenshots of each console state are kept under test-artifacts/console/ at the repository
root (git ignores it) for a reviewer to look at.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from appliance.config import load_settings
from appliance.db import Database
from appliance.services.identity import accounts
from tests.support.appliance import Appliance
from tests.support.axe import assert_accessible
from tests.support.browser import caller_joins, new_link
from tests.support.keyboard import tab_to
from tests.support.staff import add_incident

pytestmark = pytest.mark.e2e
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"


def invites_for(appliance: Appliance, reference: str) -> int:
    with contextlib.closing(sqlite3.connect(appliance.data_dir / "evr.db")) as db:
        (count,) = db.execute(
            "SELECT COUNT(*) FROM invites JOIN incidents ON incidents.id = invites.incident_id"
            " WHERE incidents.cad_reference = ?",
            (reference,),
        ).fetchone()
    return int(count)


def assign_new_incident(appliance: Appliance, username: str, reference: str) -> None:
    """An incident made for ``username`` beside the running appliance, as CAD would."""
    database = Database(load_settings(data_dir=appliance.data_dir).effective_database_url)
    try:
        with database.session() as session:
            add_incident(session, accounts.require(session, username), reference)
    finally:
        database.dispose()


def video_box(page: Page) -> dict[str, float]:
    box = page.locator("#remote-video").bounding_box()
    assert box is not None
    return box


def assert_video_on_screen(page: Page, width: int, height: int) -> None:
    """The whole video element is inside the viewport and takes about 60% of its width."""
    box = video_box(page)
    assert box["y"] >= 0 and box["y"] + box["height"] <= height, (box, width, height)
    assert 0.5 * width <= box["width"] <= 0.66 * width, (box, width)
    assert box["height"] >= 0.5 * height, (box, height)


def test_the_console_through_one_call(
    handler: Page, phone: BrowserContext, appliance: Appliance
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    dialogs: list[str] = []
    handler.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.accept()))

    # The link is made by POST, shown after a redirect: F5 shows it again, makes no second.
    link = new_link(handler, appliance, "CAD/E2E/CON1")
    assert "/invites" not in handler.url
    handler.reload()
    expect(handler.get_by_role("textbox", name="Video call link")).to_have_value(link)
    assert invites_for(appliance, "CAD/E2E/CON1") == 1

    # The refresh of the handler's own list keeps a keyboard user's place when a new
    # incident of theirs arrives and the list is rebuilt round the link they are on.
    handler.goto(appliance.base_url + "/my")
    href = handler.locator("#live-region a").first.get_attribute("href")
    on_link = handler.locator(f'#live-region a[href="{href}"]')
    tab_to(handler, on_link)
    on_link.evaluate("link => { link.dataset.before = 'refresh'; }")
    assign_new_incident(appliance, "pc1001", "CAD/E2E/CON0")
    expect(handler.locator("#live-region")).to_contain_text("CAD/E2E/CON0")
    expect(handler.locator("#live-region a[data-before]")).to_have_count(0)
    expect(on_link).to_be_focused()

    # A caller waiting shows in the menu and the title of whatever page the handler is on.
    caller = caller_joins(phone, link)
    handler.goto(appliance.base_url + "/incidents")
    # Pages ask every five seconds; the caller's page says "waiting" a moment before the box.
    expect(handler).to_have_title(re.compile(r"^\(1 waiting\) Incidents"), timeout=12_000)
    expect(handler.locator("#waiting-count")).to_have_text("1")

    handler.set_viewport_size({"width": 1920, "height": 1080})
    handler.goto(appliance.base_url + "/calls")
    open_call = handler.locator("#queue tr", has_text="CAD/E2E/CON1").get_by_role(
        "link", name="Open call"
    )
    # The list is rebuilt every 3 s: a keyboard user on its link keeps their place.
    tab_to(handler, open_call)
    open_call.evaluate("link => { link.dataset.before = 'refresh'; }")
    expect(open_call).not_to_have_attribute("data-before", "refresh", timeout=12_000)
    expect(open_call).to_be_focused()
    handler.keyboard.press("Enter")
    pill = handler.locator("#call-state")
    expect(pill).to_have_attribute("data-state", "waiting")
    expect(pill).to_have_text(re.compile(r"^WAITING [0-9]:[0-9]{2}$"))
    expect(handler.locator(".caller-card")).to_contain_text("07700 900123")
    expect(handler.locator("#recording-indicator")).to_be_hidden()
    handler.screenshot(path=str(ARTIFACTS / "1-waiting-1920x1080.png"))
    assert_accessible(handler, "console: caller waiting")

    handler.get_by_role("button", name="Admit caller").click()
    expect(pill).to_have_attribute("data-state", "connected")
    expect(pill).to_have_text(re.compile(r"^LIVE [0-9]:[0-9]{2}$"))
    expect(handler.locator("#recording-indicator")).to_be_visible()
    expect(handler.locator("#recording-indicator")).to_have_text("● Recording on")
    expect(handler.locator("#not-recording")).to_be_hidden()
    assert_video_on_screen(handler, 1920, 1080)

    # A ready-made message goes into the box; Ctrl+Enter sends it.
    handler.get_by_role("button", name="Are you safe to talk?").click()
    handler.get_by_label("Message to the caller").press("Control+Enter")
    expect(caller.locator("#chat")).to_contain_text("Are you safe to talk?")
    expect(handler.get_by_label("Message to the caller")).to_have_value("")

    # S takes a snapshot (focus not in a field): a toast, and the tab counts it.
    handler.evaluate("document.activeElement && document.activeElement.blur()")
    handler.keyboard.press("s")
    expect(handler.locator("#toast")).to_have_text("Snapshot saved")
    expect(handler.get_by_role("tab", name="Snapshots (1)")).to_be_visible()

    # The snapshot opens in the viewer; an arrow and a circle drawn there and saved make a
    # marked-up copy, listed after the original, whose hash has not changed.
    handler.get_by_role("tab", name="Snapshots (1)").click()
    gallery = handler.locator("#gallery li[data-snapshot]")
    original_id = gallery.first.get_attribute("data-snapshot")
    original_hash = gallery.first.get_attribute("data-sha256")
    gallery.first.locator("img").click()
    viewer = handler.get_by_role("dialog", name="Snapshot 1 (1 of 1)")
    expect(viewer).to_be_visible()
    expect(handler.locator("#lightbox-close")).to_be_focused()
    view = handler.locator("#lightbox-view").bounding_box()
    assert view is not None
    for tool, (x0, y0, x1, y1) in (
        ("Draw an arrow", (0.2, 0.2, 0.45, 0.45)),
        ("Draw a circle", (0.55, 0.5, 0.65, 0.5)),
    ):
        handler.get_by_label(tool).check()
        handler.mouse.move(view["x"] + view["width"] * x0, view["y"] + view["height"] * y0)
        handler.mouse.down()
        handler.mouse.move(view["x"] + view["width"] * x1, view["y"] + view["height"] * y1, steps=4)
        handler.mouse.up()
    expect(handler.locator("#lightbox-status")).to_have_text("2 shapes drawn, not saved yet.")
    handler.get_by_role("textbox", name="Caption").fill("Point of entry")
    handler.screenshot(path=str(ARTIFACTS / "2a-snapshot-drawn-1920x1080.png"))
    assert_accessible(handler, "console: the snapshot viewer")
    handler.get_by_role("button", name="Save marked-up copy").click()
    expect(handler.locator("#lightbox-status")).to_contain_text("Marked-up copy saved")
    expect(handler.get_by_role("dialog", name="Snapshot 1, marked up (2 of 2)")).to_be_visible()
    handler.screenshot(path=str(ARTIFACTS / "2b-snapshot-marked-up-copy-1920x1080.png"))
    handler.keyboard.press("ArrowLeft")
    expect(handler.get_by_role("dialog", name="Snapshot 1 (1 of 2)")).to_be_visible()
    handler.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    expect(gallery).to_have_count(2)
    expect(gallery.nth(0)).to_have_attribute("data-sha256", original_hash or "")
    expect(gallery.nth(1)).to_have_attribute("data-original", original_id or "")
    expect(gallery.nth(1)).to_contain_text("Snapshot 1, marked up")
    assert gallery.nth(1).get_attribute("data-sha256") not in ("", original_hash)
    expect(handler.get_by_role("tab", name="Snapshots (2)")).to_be_visible()

    # The outcome is recorded in its tab while the video stays where it is.
    handler.get_by_role("tab", name="Outcome").click()
    handler.locator("#outcome-code").select_option("resolved_on_call")
    handler.get_by_label("No, it was dealt with by video").check()
    handler.get_by_role("button", name="Save outcome").click()
    expect(handler.locator("#outcome-code ~ [data-ajax-status]")).to_have_text("Outcome saved.")
    assert_video_on_screen(handler, 1920, 1080)
    handler.screenshot(path=str(ARTIFACTS / "2-live-outcome-1920x1080.png"))
    assert_accessible(handler, "console: connected, the outcome tab")

    handler.set_viewport_size({"width": 1280, "height": 800})
    handler.get_by_role("button", name="Save outcome").scroll_into_view_if_needed()
    handler.get_by_role("button", name="Save outcome").click()
    expect(handler.locator("#outcome-code ~ [data-ajax-status]")).to_have_text("Outcome saved.")
    assert_video_on_screen(handler, 1280, 800)
    handler.screenshot(path=str(ARTIFACTS / "3-live-outcome-1280x800.png"))

    # The statement's text is saved as it is typed and is still there after a reload,
    # which asks first because the call is live.
    handler.get_by_role("tab", name="Statement").click()
    handler.get_by_label("Account, in the witness's words").fill("I saw the van at 21:40.")
    expect(handler.locator("#statement-draft")).to_have_text(re.compile(r"^Draft saved \d\d:\d\d$"))
    handler.screenshot(path=str(ARTIFACTS / "4-live-statement-1280x800.png"))
    assert_accessible(handler, "console: connected, the statement tab")
    handler.get_by_role("tab", name="Notes").click()
    handler.locator("#panel-notes textarea[name=text]").fill("Van seen leaving at 21:40.")
    expect(handler.locator("#panel-notes [data-draft-status]")).to_have_text(
        re.compile(r"^Draft saved \d\d:\d\d (GMT|BST)$")
    )
    handler.reload()
    assert dialogs == ["beforeunload"], dialogs
    expect(pill).to_have_attribute("data-state", "connected")
    handler.get_by_role("tab", name="Notes").click()
    expect(handler.locator("#panel-notes textarea[name=text]")).to_have_value(
        "Van seen leaving at 21:40."
    )
    expect(handler.locator("#panel-notes [data-draft-status]")).to_have_text(
        re.compile(r"^Draft saved \d\d:\d\d (GMT|BST)$")
    )
    expect(handler.locator("#gallery li[data-snapshot]").nth(0)).to_have_attribute(
        "data-sha256", original_hash or ""
    )
    handler.get_by_role("tab", name="Statement").click()
    expect(handler.get_by_label("Account, in the witness's words")).to_have_value(
        "I saw the van at 21:40."
    )

    handler.get_by_role("button", name="End call").click()
    try:
        expect(pill).to_have_attribute("data-state", "ended")
    except AssertionError:
        print(appliance.log_tail())
        raise
    expect(pill).to_have_text("ENDED by you")
    for indicator in ("#recording-indicator", "#not-recording", "#sound-only", "#quality"):
        expect(handler.locator(indicator)).to_be_hidden()
    expect(caller.get_by_role("heading", name="The call has ended")).to_be_visible()
    handler.screenshot(path=str(ARTIFACTS / "5-ended-1280x800.png"))
    assert_accessible(handler, "console: ended")
