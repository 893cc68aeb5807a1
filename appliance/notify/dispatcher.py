"""The task that sends queued messages: wakes every few seconds, or at once when poked.

Each round loads the due messages (``services.outbox.messages.due``), sends them through the
adapter a few at a time, each bounded by ``notify_timeout_seconds``, and records each
result in its own transaction. Database work runs in ``asyncio.to_thread``. A message
stays ``pending`` or ``retrying`` until its result is recorded, so a message queued
or in flight when the process stops is sent after the next start (at least once: a
gateway should send once per ``reference``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from appliance.config import Settings
from appliance.db import Database
from appliance.models import OutboundMessage, utcnow
from appliance.notify import make_notifier
from appliance.notify.base import DeliveryResult, Notifier, SmsMessage
from appliance.notify.loop import PollingTask
from appliance.services.outbox import messages
from appliance.services.outbox.messages import RetryPolicy

log = logging.getLogger("evr.notify")

INTERVAL_S = 5.0
BATCH = 20
CONCURRENCY = 4


class Dispatcher(PollingTask):
    name = "sms-dispatcher"

    def __init__(
        self,
        db: Database,
        notifier: Notifier,
        policy: RetryPolicy,
        *,
        timeout_s: float,
        interval_s: float = INTERVAL_S,
        batch: int = BATCH,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(interval_s, batch)
        self.db = db
        self.notifier = notifier
        self.policy = policy
        self.timeout_s = timeout_s
        self.clock = clock
        self._limit = asyncio.Semaphore(CONCURRENCY)

    @classmethod
    def from_settings(cls, settings: Settings, db: Database) -> Dispatcher:
        return cls(
            db,
            make_notifier(settings),
            RetryPolicy.from_settings(settings),
            timeout_s=settings.notify_timeout_seconds,
        )

    async def stop(self) -> None:
        await super().stop()
        await self.notifier.close()

    async def run_once(self) -> int:
        """Send one batch of due messages and record the results; how many were tried."""
        batch = await asyncio.to_thread(self._load_due)
        await asyncio.gather(*(self._send_and_record(mid, sms) for mid, sms in batch))
        return len(batch)

    def _load_due(self) -> list[tuple[int, SmsMessage]]:
        with self.db.session() as session:
            return [
                (m.id or 0, SmsMessage(m.to_phone, m.body, m.reference))
                for m in messages.due(session, self.clock(), self.batch)
            ]

    async def _send_and_record(self, message_id: int, sms: SmsMessage) -> None:
        async with self._limit:
            result = await self._send(sms)
        await asyncio.to_thread(self._record, message_id, result)

    async def _send(self, sms: SmsMessage) -> DeliveryResult:
        try:
            async with asyncio.timeout(self.timeout_s):  # not wait_for: see PollingTask.stop
                return await self.notifier.send(sms)
        except TimeoutError:
            return DeliveryResult.retry(f"no answer within {self.timeout_s:g} s")
        except Exception as exc:  # an adapter bug must not lose the message
            log.exception("the %s adapter raised", self.notifier.name)
            return DeliveryResult.retry(f"{type(exc).__name__} in the {self.notifier.name} adapter")

    def _record(self, message_id: int, result: DeliveryResult) -> None:
        with self.db.session() as session:
            message = session.get(OutboundMessage, message_id)
            if message is None:
                return
            messages.record_result(session, message, result, self.clock(), self.policy)
            log.info(
                "message %s: %s",
                message_id,
                message.status,
                extra={"message_id": message_id, "attempts": message.attempts},
            )
