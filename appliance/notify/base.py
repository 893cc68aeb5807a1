"""What every SMS adapter takes, answers and promises.

An adapter turns one ``SmsMessage`` into one ``DeliveryResult`` and never raises for
anything the gateway or the network does: a refusal is ``failed``, anything that may
work later (rate limit, server error, timeout, connection refused) is ``retry``. The
dispatcher decides what a result means for the stored message (``services.messages``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

# How much of a gateway's own error text is kept (last_error is 500 characters).
MAX_ERROR_CHARS = 300


class Delivery(StrEnum):
    SENT = "sent"  # the gateway accepted the message
    STORED = "stored"  # the outbox kept it; a person passes it on
    RETRY = "retry"  # not taken now; may work later
    FAILED = "failed"  # refused; trying again would not help


@dataclass(frozen=True)
class SmsMessage:
    to: str  # E.164, e.g. +447700900123
    body: str
    reference: str  # ours, echoed back by the gateway; never personal data


@dataclass(frozen=True)
class DeliveryResult:
    status: Delivery
    provider_id: str | None = None
    error: str = ""
    retry_after: float | None = None  # seconds the gateway asked us to wait

    @classmethod
    def sent(cls, provider_id: str | None) -> DeliveryResult:
        return cls(Delivery.SENT, provider_id=provider_id)

    @classmethod
    def retry(cls, error: str, retry_after: float | None = None) -> DeliveryResult:
        return cls(Delivery.RETRY, error=error[:MAX_ERROR_CHARS], retry_after=retry_after)

    @classmethod
    def failed(cls, error: str) -> DeliveryResult:
        return cls(Delivery.FAILED, error=error[:MAX_ERROR_CHARS])


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
