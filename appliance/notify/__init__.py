"""Sending messages to callers by SMS, through one of three adapters.

``make_notifier(settings)`` picks the adapter the settings name; the dispatcher
(``appliance.notify.dispatcher``) sends stored messages through it and records each
result with ``appliance.services.outbox.messages``. ``docs/sms.md`` says how to use it.
"""

from __future__ import annotations

from appliance.config import Settings
from appliance.notify.base import Delivery, DeliveryResult, Notifier, SmsMessage
from appliance.notify.govuk_notify import GovukNotifyNotifier
from appliance.notify.outbox import OutboxNotifier
from appliance.notify.webhook import WebhookNotifier


def make_notifier(settings: Settings) -> Notifier:
    """The adapter the settings name (their validator made sure its settings are there)."""
    if settings.notify_adapter == "govuk_notify":
        assert settings.notify_api_key is not None and settings.notify_template_id is not None
        return GovukNotifyNotifier(
            settings.notify_api_key.get_secret_value(),
            settings.notify_template_id,
            settings.notify_base_url,
            settings.notify_timeout_seconds,
        )
    if settings.notify_adapter == "webhook":
        assert settings.notify_webhook_url is not None
        assert settings.notify_webhook_secret is not None
        return WebhookNotifier(
            settings.notify_webhook_url,
            settings.notify_webhook_secret.get_secret_value(),
            settings.notify_timeout_seconds,
        )
    return OutboxNotifier()


__all__ = [
    "Delivery",
    "DeliveryResult",
    "GovukNotifyNotifier",
    "Notifier",
    "OutboxNotifier",
    "SmsMessage",
    "WebhookNotifier",
    "make_notifier",
]
