"""Per-source throttles: what one address may cost the box before it is refused cheaply.

A flood of sign-ins or bad API keys is answered 429 from memory once its address has
used its allowance: no password check, no database look-up, no audit row each. The
counts live in this process only (one `evr serve` per box) and forget an address a
window after its last event; the table of addresses is bounded so a spread of forged
sources cannot grow it without end.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from appliance.config import Settings
from appliance.services import audit

MAX_SOURCES = 10_000
# One Argon2 check at a time (~0.1 s of a core each), in a thread that yields the CPU to
# the event loop: a flood of sign-ins queues behind itself, never in front of a page.
PASSWORD_CHECKS_AT_ONCE = 1
PASSWORD_CHECK_NICENESS = 10


class Throttle:
    """At most ``limit`` events per key in any ``window_s`` seconds (a sliding window).

    Thread-safe: sign-ins are decided in worker threads."""

    def __init__(
        self,
        limit: int,
        window_s: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_SOURCES,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._max_keys = max_keys
        self._events: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        events = self._events.get(key)
        if events is None:
            return None
        while events and events[0] <= now - self.window_s:
            events.popleft()
        if not events:
            del self._events[key]
            return None
        return events

    def blocked(self, key: str) -> bool:
        """Whether ``key`` has used its allowance for now."""
        with self._lock:
            events = self._recent(key, self._clock())
            return events is not None and len(events) >= self.limit

    def hit(self, key: str) -> None:
        """Count one event for ``key``."""
        with self._lock:
            now = self._clock()
            events = self._recent(key, now)
            if events is None:
                events = self._events[key] = deque(maxlen=self.limit)
                while len(self._events) > self._max_keys:
                    self._events.popitem(last=False)
            else:
                self._events.move_to_end(key)
            events.append(now)

    def refund(self, key: str) -> None:
        """Take back the latest event for ``key`` (counted up front, then not owed)."""
        with self._lock:
            events = self._events.get(key)
            if events:
                events.pop()

    def retry_after(self, key: str) -> int:
        """Whole seconds until ``key`` may try again (0 when it may now)."""
        with self._lock:
            now = self._clock()
            events = self._recent(key, now)
            if events is None or len(events) < self.limit:
                return 0
            return max(1, int(events[0] + self.window_s - now + 0.999))


def _lower_priority() -> None:
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PASSWORD_CHECK_NICENESS)


def password_checker() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(
        PASSWORD_CHECKS_AT_ONCE, thread_name_prefix="evr-password", initializer=_lower_priority
    )


@dataclass
class Guards:
    """The process's throttles, the refusal tally and the cap on concurrent password
    checks (Argon2 threads that would otherwise take every core in a flood)."""

    sign_in: Throttle
    refusals: Throttle
    sso_starts: Throttle
    tally: audit.RefusalTally = field(default_factory=audit.RefusalTally)
    password_checks: ThreadPoolExecutor = field(default_factory=lambda: password_checker())

    @classmethod
    def from_settings(cls, settings: Settings) -> Guards:
        return cls(
            sign_in=Throttle(settings.login_failures_per_source),
            refusals=Throttle(settings.refusals_per_source),
            sso_starts=Throttle(settings.oidc_starts_per_source),
        )
