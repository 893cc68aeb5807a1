"""A keyboard-only person: Tab to a control (every stop on the way showing its focus),
Space or Enter on it, arrow keys in a radio group. No mouse, no ``.click()``, no
``.check()``."""

from __future__ import annotations

from playwright.sync_api import Locator, Page

# What the page shows on the focused element: an outline (our 3 px yellow one, or the
# browser's own for <summary>) or a box shadow. "none" everywhere is an invisible focus.
FOCUS_SHOWN = """() => {
    const e = document.activeElement;
    if (!e || e === document.body) return [true, "body"];
    const s = getComputedStyle(e);
    const outline = s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0;
    return [outline || s.boxShadow !== "none", e.id || e.name || e.tagName];
}"""


def tab_to(page: Page, target: Locator, limit: int = 80) -> list[str]:
    """Press Tab until ``target`` has focus; fail if it never does within ``limit`` stops
    (a control out of the tab order, or focus trapped) or if a stop shows no focus.
    Returns the stops, for a failure message."""
    stops: list[str] = []
    for _ in range(limit):
        if target.evaluate("e => e === document.activeElement"):
            return stops
        page.keyboard.press("Tab")
        shown, name = page.evaluate(FOCUS_SHOWN)
        assert shown, f"focus not visible on {name} (after {stops})"
        stops.append(name)
    raise AssertionError(f"Tab never reached {target}: {stops}")


def choose(page: Page, radio: Locator) -> None:
    """Tab into the radio's group, Space on the first stop, then arrows to the radio."""
    group = radio.get_attribute("name")
    for _ in range(80):
        if page.evaluate("() => document.activeElement && document.activeElement.name") == group:
            break
        page.keyboard.press("Tab")
    else:
        raise AssertionError(f"Tab never reached the radio group {group}")
    page.keyboard.press("Space")
    for _ in range(10):
        if radio.is_checked():
            return
        page.keyboard.press("ArrowDown")
    raise AssertionError(f"arrows never reached {radio}")
