"""The dates the box accepts from outside, in one place.

Everything this box records or reports on lies in this century: a CAD's ``received_at``
of year 1 or 9999 is a typo or an attack, and at those edges Python's ``datetime``
overflows the moment a response target or a day is added (a board that answers 500
for good). So each date that comes in (the CAD API, a form, a report's period) is
checked here and refused with the name of its field, before anything is stored or
computed. A call cannot have been received later than now, give or take the skew
between the CAD's clock and ours.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
"""The first moment refused: dates run up to 2099-12-31."""
CLOCK_SKEW = timedelta(minutes=15)
"""How far ahead of our clock a CAD's ``received_at`` may be (its clock, not the future)."""


class DateOutOfRange(ValueError):
    """A date outside what the box accepts; ``field`` names the input it came from."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def within(field: str, value: datetime) -> datetime:
    """``value`` if it lies in 2000-01-01 … 2099-12-31 (UTC)."""
    if value.tzinfo is None:
        raise DateOutOfRange(field, f"{field} needs a time zone")
    if not EARLIEST <= value < LATEST:
        last = LATEST - timedelta(days=1)
        raise DateOutOfRange(field, f"{field} must lie between {EARLIEST:%F} and {last:%F}")
    return value


def day_within(field: str, value: date) -> date:
    """A calendar day in the same range."""
    within(field, datetime(value.year, value.month, value.day, tzinfo=UTC))
    return value


def not_after_now(field: str, value: datetime, now: datetime | None = None) -> datetime:
    """A moment that has already happened (``received_at``): in range and not ahead of
    our clock by more than ``CLOCK_SKEW``."""
    within(field, value)
    if value > (now or datetime.now(UTC)) + CLOCK_SKEW:
        raise DateOutOfRange(field, f"{field} is in the future")
    return value


UK = ZoneInfo("Europe/London")


class AmbiguousTime(DateOutOfRange):
    """A UK wall-clock time that happened twice (the hour the clocks go back)."""


def uk_wall_clock(field: str, typed: datetime, clocks: str = "") -> datetime:
    """A time a person typed as UK local time (a form's ``datetime-local``), as UTC.

    The hour the clocks skip in spring never happened and is refused; the hour they
    repeat in autumn happened twice, so ``clocks`` must say which: "BST" (the first)
    or "GMT" (the second), else ``AmbiguousTime``.
    """
    naive = typed.replace(tzinfo=None)
    first, second = naive.replace(tzinfo=UK, fold=0), naive.replace(tzinfo=UK, fold=1)
    if first.astimezone(UTC).astimezone(UK).replace(tzinfo=None) != naive:
        raise DateOutOfRange(
            field,
            f"there was no {naive:%H:%M} on {naive.day} {naive:%B %Y} in the UK: "
            "the clocks went forward an hour",
        )
    chosen = first
    if first.utcoffset() != second.utcoffset():
        if clocks not in ("BST", "GMT"):
            raise AmbiguousTime(
                field,
                f"{naive:%H:%M} on {naive.day} {naive:%B %Y} happened twice in the UK (the "
                "clocks went back): say whether it was the first (BST) or the second (GMT)",
            )
        chosen = first if clocks == "BST" else second
    return within(field, chosen.astimezone(UTC))
