"""The accessibility statement (the UK public-sector model form) from one data file.

The Public Sector Bodies (Websites and Mobile Applications) (No. 2) Accessibility
Regulations 2018 require a statement in the form the Government Digital Service
publishes: compliance status, the content that does not meet the standard, how to report
a problem, the enforcement procedure and when it was prepared. Its facts live in
``appliance/data/accessibility.toml``, where each claim names the test that proves
it and each known failure its WCAG criteria, so the page cannot say more than the suite
shows; the compliance status follows from the list of failures, never from a setting.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "data" / "accessibility.toml"


@dataclass(frozen=True)
class Tested:
    what: str
    test: str  # path::function, relative to the repository


@dataclass(frozen=True)
class NotMeeting:
    what: str
    criteria: tuple[str, ...]
    plan: str


@dataclass(frozen=True)
class Statement:
    standard: str
    prepared: date
    reviewed: date
    tested: tuple[Tested, ...]
    not_meeting: tuple[NotMeeting, ...]

    @property
    def status(self) -> str:
        """The model statement's three words: fully, partially or not compliant. Not
        compliant is for a site never assessed; this one is tested, so it is partially
        compliant while anything is known not to meet the standard."""
        return "partially compliant" if self.not_meeting else "fully compliant"


def load(path: Path = DATA) -> Statement:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    return Statement(
        standard=str(raw["standard"]),
        prepared=raw["prepared"],
        reviewed=raw["reviewed"],
        tested=tuple(Tested(str(t["what"]), str(t["test"])) for t in raw.get("tested", [])),
        not_meeting=tuple(
            NotMeeting(str(n["what"]), tuple(map(str, n.get("criteria", []))), str(n["plan"]))
            for n in raw.get("not_meeting", [])
        ),
    )


@cache
def statement() -> Statement:
    """Read once a process: the file ships with the code and changes only with it."""
    return load()
