"""Sound only by itself when the caller's line cannot carry video, judged on the box.

A switch made by the caller's page, when the browser's estimate of what it could send
stayed low, was tried and withdrawn: on a busy box that estimate collapsed on good lines
too (the box's feedback came late) and turned video off for callers with a good signal.
Here the box judges from what it counts of the caller's leg each sampling period: the
share of the caller's packets that never arrived (RTP sequence numbers: a slow box does
not make them up). A period in which the box itself was late (the sampler woke late, or
the media worker was slow to answer) is no evidence either way, so a busy box neither
switches video off nor back on.

Video goes off after ``loss_on`` or more is lost for ``on_after`` periods running, and
comes back, only if the box turned it off, after ``off_after`` periods under
``loss_off``. Each time the box turns video off again on the same call, it waits twice
as long before trying it again (a line that only carries sound, but not sound and video,
would otherwise flap). A person's choice (either side's **Sound only**) is never undone.
"""

from __future__ import annotations

from dataclasses import dataclass

LOSS_ON = 0.2
LOSS_OFF = 0.05
ON_AFTER = 3
OFF_AFTER = 5
OFF_AFTER_MOST = 30
MIN_PACKETS = 20
"""Fewer packets in a period (a caller whose page is in the background) prove nothing."""


@dataclass
class WeakLine:
    """One call's judge; ``observe`` once per sampling period."""

    loss_on: float = LOSS_ON
    loss_off: float = LOSS_OFF
    on_after: int = ON_AFTER
    off_after: int = OFF_AFTER
    _received: int | None = None
    _lost: int = 0
    _bad: int = 0
    _good: int = 0
    _switched: int = 0

    def observe(
        self, received: int, lost: int, late: bool, sound_only: bool, by_box: bool
    ) -> bool | None:
        """The caller leg's cumulative packets ``received`` and ``lost``: True to switch
        the call to sound only, False to bring video back, None to leave it."""
        previous = self._received
        got, missed = received - (previous or 0), lost - self._lost
        self._received, self._lost = received, lost
        if previous is None or got < 0 or missed < 0:
            return None  # the first period, or the leg rejoined and counts from zero
        if late or got + missed < MIN_PACKETS:
            return None
        loss = missed / (got + missed)
        if not sound_only:
            self._good = 0
            self._bad = self._bad + 1 if loss >= self.loss_on else 0
            if self._bad >= self.on_after:
                self._bad = 0
                self._switched += 1
                return True
            return None
        self._bad = 0
        if not by_box:
            self._good = 0
            return None
        self._good = self._good + 1 if loss <= self.loss_off else 0
        wait = min(self.off_after * 2 ** max(self._switched - 1, 0), OFF_AFTER_MOST)
        if self._good >= wait:
            self._good = 0
            return False
        return None
