"""What every SMS adapter takes, answers and promises.

An adapter turns one ``SmsMessage`` into one ``DeliveryResult`` and never raises for
anything the gateway or the network does: a refusal is ``failed``, anything that may
work later (rate limit, server error, timeout, connection refused) is ``retry``. The
dispatcher decides what a result means for the stored message (``services.outbox.messages``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from appliance.services.outbox.messages import MAX_ERROR_CHARS, Delivery, DeliveryResult

__all__ = [
    "MAX_ERROR_CHARS",
    "Delivery",
    "DeliveryResult",
    "Notifier",
    "SmsMessage",
    "parse_retry_after",
]


@dataclass(frozen=True)
class SmsMessage:
    to: str  # E.164, e.g. +447700900123
    body: str
    reference: str  # ours, echoed back by the gateway; never personal data


class Notifier(Protocol):
    """One adapter. ``name`` is what the settings call it."""

    name: str

    async def send(self, message: SmsMessage) -> DeliveryResult: ...

    async def close(self) -> None: ...


def parse_retry_after(value: str | None) -> float | None:
    """A Retry-After header in seconds (an HTTP date is ignored: gateways send seconds)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if 0 <= seconds <= 86400 else None
