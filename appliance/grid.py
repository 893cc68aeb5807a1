"""A caller's position in the force's terms: a British National Grid reference.

Phones report WGS 84 latitude and longitude; officers, CAD and OS maps speak eastings,
northings and the OS grid letters ("TQ 30079 80403"). The transformation is the
Ordnance Survey's OSTN15, which ``convertbng`` carries inside its own wheel (Rust, with
the OSTN15 grid compiled in): pyproj would need OSTN15's grid file, which PROJ fetches
from a network this box does not have, and a plain Helmert transformation is several
metres out. WGS 84 is taken as ETRS89, as the OS does for positions of a phone's
accuracy (the two differ by under a metre in Great Britain).

The library loads OSTN15 at its first conversion (about half a second of CPU), so a
caller on the event loop runs ``reference`` in a thread (``asyncio.to_thread``); later
conversions take microseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from convertbng.cutil import convert_bng

# The National Grid's 100 km squares as the OS letters them: 25 letters (no I) in a
# 5 × 5 block, the first letter for the 500 km square, the second within it.
_LETTERS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class GridReference:
    """OSGB36 National Grid eastings and northings, in metres."""

    easting: float
    northing: float

    @property
    def letters(self) -> str:
        """The two OS letters of the 100 km square (for example TQ for central London)."""
        e100, n100 = int(self.easting // 100_000), int(self.northing // 100_000)
        first = (19 - n100) - (19 - n100) % 5 + (e100 + 10) // 5
        second = (19 - n100) * 5 % 25 + e100 % 5
        return _LETTERS[first] + _LETTERS[second]

    def __str__(self) -> str:
        """The full reference to the metre: letters, then five digits of each (truncated,
        as grid references are: the square the point is in, not the nearest corner)."""
        east = int(self.easting) % 100_000
        north = int(self.northing) % 100_000
        return f"{self.letters} {east:05d} {north:05d}"


def reference(latitude: float, longitude: float) -> GridReference | None:
    """The grid reference of a position, or ``None`` outside the area OSTN15 covers
    (Great Britain, the Isle of Man and the seas around them; not the Channel Islands)."""
    eastings, northings = convert_bng(longitude, latitude)
    easting, northing = float(eastings[0]), float(northings[0])
    if not (math.isfinite(easting) and math.isfinite(northing)):
        return None
    return GridReference(easting, northing)


@cache
def warm() -> None:
    """Load OSTN15 (the first conversion's half second), once; call it in a thread."""
    reference(51.5, -0.1)
