"""axe-core on a page as it is now: WCAG 2.2 AA, zero violations of any impact.

The browser tests call :func:`assert_accessible` at the moments they already reach each
state of a caller, guest or console page (docs/accessibility.md lists them), so the
check costs an axe run (about a quarter of a second a page) and no extra call.
``axe-playwright-python`` (pinned in the ``dev`` extra) bundles axe-core itself
(4.12.1 in 0.1.8), injected from the package: nothing is fetched.
"""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

# The WCAG 2.0, 2.1 and 2.2 A and AA rules (axe tags each rule with the level that added
# it, so all five tags together are "WCAG 2.2 AA").
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]

# Rules switched off, each with why. Empty: every rule in those tags runs on every page.
DISABLED: dict[str, str] = {}

AXE = Axe()


def violations(page: Page) -> list[dict[str, Any]]:
    options: dict[str, Any] = {
        "resultTypes": ["violations"],
        "runOnly": {"type": "tag", "values": WCAG_22_AA},
        "rules": {rule: {"enabled": False} for rule in DISABLED},
    }
    return list(AXE.run(page, options=options).response["violations"])


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
