"""Which notification a staff page raised for each waiting caller, for the answer-wait
metric (``evr_call_answer_wait_seconds{notification}``) when a handler admits them.

Kept in memory only, for calls live on this box, the strongest one per call.
"""

from __future__ import annotations

from collections.abc import Container

from appliance import metrics


class Alerts:
    def __init__(self) -> None:
        self.raised: dict[str, str] = {}

    def note(self, public_id: str, notification: str, live: Container[str]) -> None:
        """A page announced this waiting caller (``desktop`` or ``sound``)."""
        for gone in [k for k in self.raised if k not in live]:
            del self.raised[gone]
        if public_id not in live or notification not in metrics.NOTIFICATIONS:
            return
        order = metrics.NOTIFICATIONS
        current = self.raised.get(public_id, "none")
        if order.index(notification) < order.index(current):
            self.raised[public_id] = notification

    def take(self, public_id: str) -> str:
        """The strongest one raised, once: the caller is being answered."""
        return self.raised.pop(public_id, "none")
