"""Sends queued CAD events: a signed JSON ``POST`` per event, retried with backoff.

The request (docs/cad-api.md, and the OpenAPI document's ``webhooks``):

- body: the event's JSON exactly as queued (the same bytes on every attempt);
- ``X-EVR-Event-Id``: the event's id, for the CAD to de-duplicate (delivery is at least
  once: an answer lost on the way back is sent again);
- ``X-EVR-Timestamp``: Unix seconds of this attempt, so each retry is signed afresh and
  a captured request cannot be replayed after five minutes;
- ``X-EVR-Signature``: ``sha256=<hex>``, HMAC-SHA256 with the shared secret over
  ``<timestamp>.<body bytes>`` (the SMS webhook's scheme).

Answers: 2xx = delivered; 408, 429, 5xx, a timeout or no connection = try again later
(``Retry-After`` honoured); 401 and 403 (the CAD refused our signature: usually the two
ends hold different secrets) are retried too, so fixing the secret loses nothing; any
other 4xx = refused for good and shown as failed for an admin to send again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from appliance import metrics
from appliance.config import Settings
from appliance.db import Database
from appliance.models import CadDelivery, utcnow
from appliance.notify.base import parse_retry_after
from appliance.notify.http import NETWORK_ERRORS, HttpClient, network_error, redirect_refused
from appliance.notify.loop import PollingTask
from appliance.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from appliance.services.outbox import cad
from appliance.services.outbox.cad import Answer

log = logging.getLogger("evr.cad")

EVENT_ID_HEADER = "X-EVR-Event-Id"
RETRIED_REFUSALS = (401, 403, 408, 429)


class CadSender(PollingTask):
    name = "cad-sender"

    def __init__(
        self,
        db: Database,
        url: str,
        secret: str,
        *,
        timeout_s: float,
        max_attempts: int,
        backoff_s: float = 5.0,
        ca_file: Path | None = None,
        interval_s: float = 5.0,
        batch: int = 20,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(min(interval_s, backoff_s), batch)
        self.backoff_s = backoff_s
        self.db = db
        self.url = url
        self.secret = secret
        self.max_attempts = max_attempts
        self.clock = clock
        self.http = HttpClient(timeout_s, ca_file)

    @classmethod
    def from_settings(cls, settings: Settings, db: Database) -> CadSender | None:
        if settings.cad_webhook_url is None or settings.cad_webhook_secret is None:
            return None
        return cls(
            db,
            settings.cad_webhook_url,
            settings.cad_webhook_secret.get_secret_value(),
            timeout_s=settings.cad_webhook_timeout_seconds,
            max_attempts=settings.cad_webhook_max_attempts,
            backoff_s=settings.cad_webhook_backoff_seconds,
            ca_file=settings.cad_webhook_ca_file,
        )

    async def stop(self) -> None:
        await super().stop()
        await self.http.close()

    async def run_once(self) -> int:
        due = await asyncio.to_thread(self._load_due)
        for delivery_id, event_id, body in due:  # in order: the CAD sees events as they came
            answer = await self.post(event_id, body.encode())
            await asyncio.to_thread(self._record, delivery_id, answer)
        return len(due)

    def _load_due(self) -> list[tuple[int, str, str]]:
        with self.db.session() as session:
            return [
                (d.id or 0, d.event_id, d.body) for d in cad.due(session, self.clock(), self.batch)
            ]

    async def post(self, event_id: str, body: bytes) -> Answer:
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: event_id,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(self.secret, timestamp, body),
        }
        try:
            async with self.http.post(self.url, data=body, headers=headers) as reply:
                status = reply.status
                redirected = redirect_refused(reply)
                retry_after = parse_retry_after(reply.headers.get("Retry-After"))
                text = (await reply.text())[:200]
        except NETWORK_ERRORS as exc:
            return Answer(False, True, None, network_error(exc, self.http.timeout_s))
        if 200 <= status < 300:
            return Answer(True, False, status)
        if redirected:
            return Answer(False, False, status, redirected)
        retry = status in RETRIED_REFUSALS or status >= 500
        return Answer(False, retry, status, f"HTTP {status}: {text}".strip(), retry_after)

    def _record(self, delivery_id: int, answer: Answer) -> None:
        with self.db.session() as session:
            delivery = session.get(CadDelivery, delivery_id)
            if delivery is None:
                return
            cad.record_answer(
                session, delivery, answer, self.clock(), self.max_attempts, self.backoff_s
            )
            state = delivery.state
        metrics.CAD_DELIVERIES.labels(
            "delivered" if answer.delivered else "retry" if state == "pending" else "failed"
        ).inc()
        log.info("CAD event %s: %s", delivery_id, state, extra={"cad_delivery": delivery_id})
