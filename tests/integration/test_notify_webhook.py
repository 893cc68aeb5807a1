"""The force's own SMS gateway: a signed JSON POST, against a local gateway that
checks the HMAC over the exact bytes it received and the timestamp."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest

from appliance.config import Settings
from appliance.db import Database
from appliance.models import MessageStatus, OutboundMessage
from appliance.notify import Delivery, SmsMessage, WebhookNotifier
from appliance.notify.dispatcher import Dispatcher
from appliance.services.audit import Actor
from appliance.services.outbox import messages
from appliance.services.outbox.messages import RetryPolicy
from tests.support.live import free_port
from tests.support.sms_gateways import Clock, WebhookGateway, sms_counts

SECRET = "a-shared-secret-of-forty-characters-0123"
PHONE = "+447700900456"
BODY = "Wessex: here is the link for your video call: https://evr.test/j/tøk"
SMS = SmsMessage(PHONE, BODY, "call-9f8e7d6c")


# Default settings for messages queued outside an app (the RVR gate reads its lists).
SMS_SETTINGS = Settings()


@pytest.fixture
async def gateway() -> AsyncIterator[WebhookGateway]:
    server = WebhookGateway(SECRET)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def _send(gateway_url: str, secret: str = SECRET, timeout_s: float = 2.0):
    adapter = WebhookNotifier(gateway_url, secret, timeout_s)
    try:
        return await adapter.send(SMS)
    finally:
        await adapter.close()


async def test_a_signed_message_is_accepted_and_the_gateway_id_kept(
    gateway: WebhookGateway,
) -> None:
    result = await _send(gateway.url)
    assert gateway.violations == []
    assert gateway.accepted == [{"to": PHONE, "body": BODY, "reference": "call-9f8e7d6c"}]
    assert result.status is Delivery.SENT
    assert result.provider_id is not None and result.provider_id.startswith("gw-")


async def test_the_gateway_really_checks_signature_and_timestamp(
    gateway: WebhookGateway,
) -> None:

    wrong_key = await _send(gateway.url, secret="another-secret-of-forty-characters-98765")
    assert wrong_key.status is Delivery.FAILED
    assert gateway.violations == ["signature does not match the body"]
    async with aiohttp.ClientSession() as session:
        headers = {"X-EVR-Timestamp": "1000000000", "X-EVR-Signature": "sha256=00"}
        async with session.post(gateway.url, data=b"{}", headers=headers) as response:
            assert response.status == 401
    assert gateway.violations[-1] == "timestamp missing or more than 5 minutes off"
    assert gateway.accepted == []


@pytest.mark.parametrize(
    ("mode", "status"),
    [
        (400, Delivery.FAILED),
        (404, Delivery.FAILED),
        (422, Delivery.FAILED),
        (408, Delivery.RETRY),
        (429, Delivery.RETRY),
        (500, Delivery.RETRY),
        (503, Delivery.RETRY),
        ("hang", Delivery.RETRY),
    ],
)
async def test_each_answer_maps_to_retry_or_failed(
    gateway: WebhookGateway, mode: int | str, status: Delivery
) -> None:
    gateway.mode = mode
    gateway.retry_after = "75" if mode == 429 else None
    result = await _send(gateway.url, timeout_s=0.5)
    assert gateway.violations == []
    assert result.status is status
    assert result.retry_after == (75 if mode == 429 else None)
    # The gateway echoed the number in its error: the box does not keep that text.
    assert PHONE not in result.error and result.error
    if mode == "hang":
        assert result.error == "no answer within 0.5 s"


async def test_a_gateway_that_is_down_means_retry() -> None:
    result = await _send(f"http://127.0.0.1:{free_port()}/sms")
    assert result.status is Delivery.RETRY
    assert result.error.startswith("cannot connect to the gateway")


def _queue(db: Database, reference: str = "call-9f8e7d6c") -> int:
    with db.session() as session:
        return (
            messages.queue_sms(
                session,
                Actor("handler1"),
                settings=SMS_SETTINGS,
                to_phone=PHONE,
                body=BODY,
                reference=reference,
            ).id
            or 0
        )


def _message(db: Database, message_id: int) -> OutboundMessage:
    with db.session() as session:
        message = session.get(OutboundMessage, message_id)
        assert message is not None
        return message


async def test_retry_after_is_honoured_and_a_refusal_is_final(
    db: Database, gateway: WebhookGateway
) -> None:
    before = sms_counts()
    first, second = _queue(db, "ref-a"), _queue(db, "ref-b")
    clock = Clock()
    dispatcher = Dispatcher(
        db, WebhookNotifier(gateway.url, SECRET, 1), RetryPolicy(), timeout_s=2, clock=clock
    )
    gateway.mode, gateway.retry_after = 429, "600"
    try:
        assert await dispatcher.run_once() == 2
        for message_id in (first, second):
            message = _message(db, message_id)
            assert message.status == MessageStatus.RETRYING
            assert message.last_error == "the gateway answered 429"
            assert message.next_attempt_at == clock.now + timedelta(seconds=600)
        clock.advance(600)
        gateway.mode = 403
        assert await dispatcher.run_once() == 2
    finally:
        await dispatcher.stop()
    for message_id in (first, second):
        message = _message(db, message_id)
        assert message.status == MessageStatus.FAILED and message.attempts == 2
        assert message.last_error == "the gateway refused the message (403)"
    assert sms_counts() == (before[0], before[1] + 2)


async def test_nothing_is_lost_across_a_restart(
    db: Database, database_url: str, gateway: WebhookGateway
) -> None:
    """Queued while the gateway is down; a new process with a new dispatcher sends it."""
    message_id = _queue(db)
    await gateway.stop()
    clock = Clock()
    first = Dispatcher(
        db, WebhookNotifier(gateway.url, SECRET, 1), RetryPolicy(), timeout_s=2, clock=clock
    )
    try:
        await first.run_once()
    finally:
        await first.stop()
    assert _message(db, message_id).status == MessageStatus.RETRYING
    never_tried = _queue(db, "queued-while-stopped")

    await gateway.start(gateway.port)
    clock.advance(30)
    restarted_db = Database(database_url)
    second = Dispatcher(
        restarted_db,
        WebhookNotifier(gateway.url, SECRET, 1),
        RetryPolicy(),
        timeout_s=2,
        clock=clock,
    )
    try:
        assert await second.run_once() == 2
    finally:
        await second.stop()
        restarted_db.dispose()
    assert _message(db, message_id).status == MessageStatus.SENT
    assert _message(db, never_tried).status == MessageStatus.SENT
    assert sorted(m["reference"] for m in gateway.accepted) == [
        "call-9f8e7d6c",
        "queued-while-stopped",
    ]


async def test_the_running_task_sends_at_once_when_poked(
    db: Database, gateway: WebhookGateway
) -> None:
    """The real loop: a long tick, so only the poke can explain a prompt send."""
    dispatcher = Dispatcher(
        db, WebhookNotifier(gateway.url, SECRET, 1), RetryPolicy(), timeout_s=2, interval_s=60
    )
    await dispatcher.start()
    try:
        await asyncio.sleep(0.2)  # the first round found nothing and sleeps
        message_id = await asyncio.to_thread(_queue, db)
        await asyncio.to_thread(dispatcher.poke)  # from another thread, as a service might
        for _ in range(50):
            if _message(db, message_id).status == MessageStatus.SENT:
                break
            await asyncio.sleep(0.1)
    finally:
        await dispatcher.stop()
    assert _message(db, message_id).status == MessageStatus.SENT
    assert len(gateway.accepted) == 1
