"""axe-core on a page as it is now: WCAG 2.2 AA, zero violations of any impact.

The browser tests call :func:`assert_accessible` at the moments they already reach each
state of a caller, guest or console page (docs/accessibility.md lists them), so the
check costs an axe run (0.4 to 0.6 s on this loaded 2-core box) and no extra call.
``axe-playwright-python`` (pinned in the ``dev`` extra) bundles axe-core itself
(4.12.1 in 0.1.8), injected from the package: nothing is fetched. Below it, what axe
cannot judge from the DOM: reflow at 320 CSS px and controls in forced colours.
"""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page

# The WCAG 2.0, 2.1 and 2.2 A and AA rules (axe tags each rule with the level that added
# it, so all five tags together are "WCAG 2.2 AA").
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]

# Rules switched off, each with why. Empty: every rule in those tags runs on every page.
DISABLED: dict[str, str] = {}

AXE = Axe()

STYLED = """() => [...document.querySelectorAll('link[rel=stylesheet]')].every((l) => l.sheet)"""


def violations(page: Page) -> list[dict[str, Any]]:
    options: dict[str, Any] = {
        "resultTypes": ["violations"],
        "runOnly": {"type": "tag", "values": WCAG_22_AA},
        "rules": {rule: {"enabled": False} for rule in DISABLED},
    }
    # A state reached by a form post is in the DOM before its stylesheets have loaded on
    # a busy box; judged unstyled, the footer's links and buttons are too small targets.
    # (Not the load event: that waits for every image too, and the evaluation page's
    # charts are drawn on request, which took a minute on CI.)
    page.wait_for_function(STYLED)
    # The package's own run() injects its 0.5 MB script at every call; a page that has it
    # from an earlier state (the call screen changes state without loading) keeps it.
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.axe_script)
    results = page.evaluate("(options) => axe.run(document, options)", options)
    return list(results["violations"])


def described(found: list[dict[str, Any]]) -> list[str]:
    """One line a rule: its id, impact, help, and where (the first few targets)."""
    lines = []
    for violation in found:
        targets = [" ".join(map(str, node["target"])) for node in violation["nodes"]][:4]
        lines.append(
            f"{violation['id']} ({violation['impact']}): {violation['help']} "
            f"at {targets} ({len(violation['nodes'])}x)"
        )
    return lines


def assert_accessible(page: Page, state: str) -> None:
    """Zero WCAG 2.2 A/AA violations, of any impact, in ``state`` (for the message)."""
    found = described(violations(page))
    assert found == [], f"{state}: {found}"


# What axe cannot see, checked on the page as it is rendered.

EDGELESS = """() => [...document.querySelectorAll(
        "button, .button, input:not([type=radio]):not([type=checkbox]), select, textarea")]
    .filter((e) => e.offsetParent !== null)
    .filter((e) => {
        const s = getComputedStyle(e);
        return ["Top", "Right", "Bottom", "Left"].some((side) =>
            s["border" + side + "Style"] === "none"
            || parseFloat(s["border" + side + "Width"]) === 0);
    })
    .map((e) => e.id || e.name || e.textContent.trim())"""


def assert_reflows(browser: Browser, url: str, width: int = 320, text_zoom: int = 100) -> None:
    """WCAG 1.4.10: at ``width`` CSS pixels (a 1280 px screen at 400%) nothing makes
    ``url`` scroll sideways. A desktop context of its own: a phone's emulation zooms a
    page out to its content, which would hide the very overflow looked for.

    With ``text_zoom`` (WCAG 1.4.4, text resized to 200%), the root font size is that
    much larger, as a browser's text-only zoom or a phone's larger-text setting makes it
    (the page's sizes are in rem and em, so they follow it), and besides no sideways
    scroll every visible control lies whole inside the width and on no other control."""
    context = browser.new_context(
        ignore_https_errors=True,
        locale="en-GB",
        viewport={"width": width, "height": 640},
        bypass_csp=text_zoom != 100,  # the page's policy refuses an injected stylesheet
    )
    try:
        page = context.new_page()
        page.goto(url)
        if text_zoom != 100:
            page.add_style_tag(content=f"html {{ font-size: {text_zoom}% !important; }}")
            zoomed = page.evaluate("() => getComputedStyle(document.body).fontSize")
            assert float(zoomed.removesuffix("px")) >= 16 * text_zoom / 100 * 0.99, zoomed
        wide = page.evaluate(
            """(width) => {
                // Elements, and text that overflows its element (a long unbroken word).
                const wide = [];
                const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
                for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                    const range = document.createRange();
                    range.selectNodeContents(node);
                    if (range.getBoundingClientRect().right > width + 1) {
                        wide.push(node.textContent.trim().slice(0, 40));
                    }
                }
                for (const e of document.querySelectorAll("body *")) {
                    if (e.getBoundingClientRect().right > width + 1) wide.push(e.id || e.tagName);
                }
                return [document.documentElement.scrollWidth, wide.slice(0, 8)];
            }""",
            width,
        )
        assert wide[0] <= width, f"{url}: {wide[0]} px wide at {width} px: {wide[1]}"
        if text_zoom != 100:
            placed = page.evaluate(CONTROLS_PLACED, width)
            assert placed == [], f"{url} with text at {text_zoom}%: {placed}"
    finally:
        context.close()


# Each visible control (a link, button, field or choice) whole inside the page's width,
# not squeezed to nothing, and on top of no other control.
CONTROLS_PLACED = """(width) => {
    const controls = [...document.querySelectorAll(
            "a[href], button, input:not([type=hidden]), select, textarea, summary")]
        .filter((e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden")
        .filter((e) => !e.closest(".visually-hidden"));
    const name = (e) => e.id || e.name || e.textContent.trim().slice(0, 30) || e.tagName;
    const boxes = controls.map((e) => [e, e.getBoundingClientRect()]);
    const found = [];
    for (const [e, b] of boxes) {
        if (b.left < -1 || b.right > width + 1) found.push(`${name(e)} outside the width`);
        if (b.width < 1 || b.height < 1) found.push(`${name(e)} squeezed to nothing`);
    }
    for (let i = 0; i < boxes.length; i++) {
        for (let j = i + 1; j < boxes.length; j++) {
            const [e, a] = boxes[i], [f, b] = boxes[j];
            if (e.contains(f) || f.contains(e)) continue;  // a choice's input in its label
            const x = Math.min(a.right, b.right) - Math.max(a.left, b.left);
            const y = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
            if (x > 1 && y > 1) found.push(`${name(e)} overlaps ${name(f)}`);
        }
    }
    return found.slice(0, 8);
}"""


def assert_controls_edged_in_forced_colours(page: Page) -> None:
    """Forced colours (Windows contrast themes) drop backgrounds and shadows: a button
    drawn only by its background would vanish. Every visible control keeps a border on
    all four sides there."""
    page.emulate_media(forced_colors="active")
    try:
        edgeless = page.evaluate(EDGELESS)
        assert edgeless == [], f"no edge in forced colours: {edgeless}"
    finally:
        page.emulate_media(forced_colors="none")
