"""The default adapter: nothing leaves the box.

The message is kept (status ``stored``) and listed on ``/admin/outbox``, where
someone can pass the link on by hand. A box with no SMS gateway still works.
"""

from __future__ import annotations

from appliance.notify.base import Delivery, DeliveryResult, SmsMessage


class OutboxNotifier:
    name = "outbox"

    async def send(self, message: SmsMessage) -> DeliveryResult:
        return DeliveryResult(Delivery.STORED)

    async def close(self) -> None:
        return None
