"""The force's own SMS gateway: a signed JSON ``POST``.

Body: ``{"to": "+447700900123", "body": "...", "reference": "..."}`` (UTF-8, sent as
the exact bytes that were signed). Headers:

- ``X-EVR-Timestamp``: Unix seconds when the request was made;
- ``X-EVR-Signature``: ``sha256=<hex>``, HMAC-SHA256 with the shared secret over
  ``<timestamp>.<body bytes>``.

A gateway recomputes the HMAC over the bytes it received, compares in constant time,
and refuses a timestamp more than 5 minutes from its own clock, so a captured request
cannot be replayed later. The same message may arrive twice (an answer lost on the
way back is retried): the gateway should send once per ``reference``.

Answers: 2xx = sent (an ``id`` in a JSON answer is kept as the provider id); 408,
429 and 5xx = try again later (``Retry-After`` in seconds is honoured); any other
4xx = refused, not retried. A timeout or a refused connection is tried again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from appliance.notify.base import DeliveryResult, SmsMessage, parse_retry_after
from appliance.notify.http import NETWORK_ERRORS, HttpClient, network_error, redirect_refused

SIGNATURE_HEADER = "X-EVR-Signature"
TIMESTAMP_HEADER = "X-EVR-Timestamp"
REPLAY_WINDOW_S = 300


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, given: str, now: float | None = None) -> bool:
    """What a gateway does with our request (and what the tests' gateway does)."""
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        return False
    if age > REPLAY_WINDOW_S:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), given)


def encode(message: SmsMessage) -> bytes:
    return json.dumps(
        {"to": message.to, "body": message.body, "reference": message.reference},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


class WebhookNotifier:
    name = "webhook"

    def __init__(self, url: str, secret: str, timeout_s: float = 10.0) -> None:
        self.url = url
        self._secret = secret
        self.http = HttpClient(timeout_s)

    async def send(self, message: SmsMessage) -> DeliveryResult:
        body = encode(message)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(self._secret, timestamp, body),
        }
        try:
            async with self.http.post(self.url, data=body, headers=headers) as resp:
                status = resp.status
                redirected = redirect_refused(resp)
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                answer: Any = None
                if 200 <= status < 300:
                    try:
                        answer = await resp.json(content_type=None)
                    except ValueError:
                        answer = None
        except NETWORK_ERRORS as exc:
            return DeliveryResult.retry(network_error(exc, self.http.timeout_s))
        if redirected:
            return DeliveryResult.failed(redirected)
        # The gateway's own error text is not kept: it may echo the number.
        if 200 <= status < 300:
            provider_id = answer.get("id") if isinstance(answer, dict) else None
            return DeliveryResult.sent(str(provider_id)[:128] if provider_id else None)
        if status in (408, 429) or status >= 500:
            return DeliveryResult.retry(f"the gateway answered {status}", retry_after)
        return DeliveryResult.failed(f"the gateway refused the message ({status})")

    async def close(self) -> None:
        await self.http.close()
