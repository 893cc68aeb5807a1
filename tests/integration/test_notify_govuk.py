"""GOV.UK Notify, against a local server that speaks its API contract.

The server checks the Bearer JWT with PyJWT (signature, ``iss``, ``iat`` within
30 s), validates the body and answers with Notify's own shapes and error codes.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from sqlmodel import select

from appliance.config import Settings
from appliance.db import Database
from appliance.models import AuditEvent, MessageStatus, OutboundMessage
from appliance.notify import Delivery, GovukNotifyNotifier, SmsMessage
from appliance.notify.dispatcher import Dispatcher
from appliance.notify.govuk_notify import make_jwt
from appliance.services.audit import Actor
from appliance.services.outbox import messages
from appliance.services.outbox.messages import RetryPolicy
from tests.support.live import free_port
from tests.support.sms_gateways import Clock, NotifyContract, sms_counts

SERVICE_ID = "26785a09-ab16-4eb0-8407-a37497a57506"
SECRET = "3d844edf-8d35-48ac-975b-e847b4f122b0"
API_KEY = f"evr_live-{SERVICE_ID}-{SECRET}"
TEMPLATE_ID = "f33517ff-2a88-4f6e-b855-c550268ce08a"
PHONE = "+447700900123"
BODY = "Wessex Constabulary: here is the link for your video call: https://evr.test/j/tok"
SMS = SmsMessage(PHONE, BODY, "call-1a2b3c4d")


# Default settings for messages queued outside an app (the RVR gate reads its lists).
SMS_SETTINGS = Settings()


@pytest.fixture
async def notify() -> AsyncIterator[NotifyContract]:
    server = NotifyContract(SERVICE_ID, SECRET, TEMPLATE_ID)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _adapter(server: NotifyContract, timeout_s: float = 2.0, key: str = API_KEY):
    return GovukNotifyNotifier(key, TEMPLATE_ID, server.base_url + "/", timeout_s)


async def test_a_good_request_is_accepted_and_its_notification_id_kept(
    notify: NotifyContract,
) -> None:

    adapter = _adapter(notify)
    try:
        result = await adapter.send(SMS)
    finally:
        await adapter.close()
    assert notify.violations == []
    assert notify.accepted == [
        {
            "phone_number": PHONE,
            "template_id": TEMPLATE_ID,
            "personalisation": {"body": BODY},
            "reference": "call-1a2b3c4d",
        }
    ]
    assert result.status is Delivery.SENT and result.error == ""
    assert result.provider_id is not None and len(result.provider_id) == 36


async def test_the_contract_server_really_checks_the_token(notify: NotifyContract) -> None:
    """The stand-in refuses what Notify refuses, so its 201s mean something."""
    url = notify.base_url + "/v2/notifications/sms"
    body = {"phone_number": PHONE, "template_id": TEMPLATE_ID, "personalisation": {"body": "x"}}
    stale = make_jwt(SERVICE_ID, SECRET, time.time() - 60)
    other_service = make_jwt("0" * 8 + SERVICE_ID[8:], SECRET, time.time())
    async with aiohttp.ClientSession() as session:
        for token, expected in (
            (stale, "Your system clock must be accurate to within 30 seconds"),
            (other_service, "Invalid token"),
        ):
            headers = {"Authorization": f"Bearer {token}"}
            async with session.post(url, json=body, headers=headers) as response:
                answer = await response.json()
            assert response.status == 403
            assert answer["status_code"] == 403 and answer["errors"][0]["error"] == "AuthError"
            assert expected in answer["errors"][0]["message"]
    assert notify.accepted == []


async def test_a_wrong_secret_is_refused_by_signature_and_not_retried(
    notify: NotifyContract,
) -> None:
    wrong = f"evr_live-{SERVICE_ID}-{'9' * 8}-8d35-48ac-975b-e847b4f122b0"
    adapter = _adapter(notify, key=wrong)
    try:
        result = await adapter.send(SMS)
    finally:
        await adapter.close()
    assert result.status is Delivery.FAILED
    assert result.error == "403 AuthError: Invalid token: API key not found"


@pytest.mark.parametrize(
    ("mode", "status", "error"),
    [
        (400, Delivery.FAILED, "400 ValidationError: phone_number Not a UK mobile number"),
        (403, Delivery.FAILED, "403 AuthError: Error: Your system clock must be accurate"),
        (429, Delivery.RETRY, "429 RateLimitError: Exceeded rate limit"),
        (500, Delivery.RETRY, "500 Exception: Internal server error"),
        ("hang", Delivery.RETRY, "no answer within 0.5 s"),
    ],
)
async def test_each_answer_maps_to_sent_retry_or_failed(
    notify: NotifyContract, mode: int | str, status: Delivery, error: str
) -> None:
    notify.mode = mode
    notify.retry_after = "42" if mode == 429 else None
    adapter = _adapter(notify, timeout_s=0.5)
    try:
        result = await adapter.send(SMS)
    finally:
        await adapter.close()
    assert notify.violations == []
    assert result.status is status
    assert result.error.startswith(error)
    assert result.retry_after == (42 if mode == 429 else None)
    assert PHONE not in result.error


async def test_a_gateway_that_is_down_means_retry() -> None:
    adapter = GovukNotifyNotifier(API_KEY, TEMPLATE_ID, f"http://127.0.0.1:{free_port()}", 2)
    try:
        result = await adapter.send(SMS)
    finally:
        await adapter.close()
    assert result.status is Delivery.RETRY
    assert result.error.startswith("cannot connect to the gateway")


# Through the service and the dispatcher, on both databases.


def _queue(db: Database, reference: str = "call-1a2b3c4d") -> int:
    with db.session() as session:
        message = messages.queue_sms(
            session,
            Actor("handler1", "10.0.0.9"),
            settings=SMS_SETTINGS,
            to_phone=PHONE,
            body=BODY,
            reference=reference,
        )
        return message.id or 0


def _message(db: Database, message_id: int) -> OutboundMessage:
    with db.session() as session:
        message = session.get(OutboundMessage, message_id)
        assert message is not None
        return message


def _audit(db: Database) -> list[AuditEvent]:
    with db.session() as session:
        return list(session.exec(select(AuditEvent).order_by(AuditEvent.seq)).all())


def _dispatcher(db: Database, notify: NotifyContract, clock: Clock, attempts: int = 5):
    return Dispatcher(
        db, _adapter(notify, 0.5), RetryPolicy(max_attempts=attempts), timeout_s=1.0, clock=clock
    )


async def test_sent_through_the_dispatcher_with_the_notification_id(
    db: Database, notify: NotifyContract
) -> None:
    before = sms_counts()
    message_id = _queue(db)
    clock = Clock()
    dispatcher = _dispatcher(db, notify, clock)
    assert _message(db, message_id).status == MessageStatus.PENDING
    try:
        assert await dispatcher.run_once() == 1
        assert await dispatcher.run_once() == 0
    finally:
        await dispatcher.stop()
    message = _message(db, message_id)
    assert message.status == MessageStatus.SENT and message.attempts == 1
    assert message.provider_id is not None and len(message.provider_id) == 36
    assert message.sent_at == clock.now and message.next_attempt_at is None
    assert notify.requests == 1 and notify.violations == []
    assert sms_counts() == (before[0] + 1, before[1])

    events = _audit(db)
    assert [e.action for e in events] == ["message.queued", "message.sent"]
    assert events[1].object_type == "message" and events[1].object_id == str(message_id)
    assert events[1].detail["reference"] == "call-1a2b3c4d"
    everything = json.dumps([e.model_dump(mode="json") for e in events])
    assert PHONE not in everything and "7700900123" not in everything
    assert BODY not in everything and "https://evr.test/j/tok" not in everything


@pytest.mark.parametrize("mode", [400, 403])
async def test_refusals_fail_at_once_and_are_not_retried(
    db: Database, notify: NotifyContract, mode: int
) -> None:
    before = sms_counts()
    message_id = _queue(db)
    clock = Clock()
    notify.mode = mode
    dispatcher = _dispatcher(db, notify, clock)
    try:
        await dispatcher.run_once()
        clock.advance(86400)
        assert await dispatcher.run_once() == 0
    finally:
        await dispatcher.stop()
    message = _message(db, message_id)
    assert message.status == MessageStatus.FAILED and message.attempts == 1
    assert message.last_error.startswith(f"{mode} ")
    assert message.next_attempt_at is None and message.sent_at is None
    assert notify.requests == 1
    assert sms_counts() == (before[0], before[1] + 1)
    failed = [e for e in _audit(db) if e.action == "message.failed"]
    assert len(failed) == 1 and failed[0].detail["gave_up"] is False


@pytest.mark.parametrize("mode", [429, 500, "hang", "down"])
async def test_a_gateway_in_trouble_is_retried_with_backoff_until_it_recovers(
    db: Database, notify: NotifyContract, mode: int | str
) -> None:
    before = sms_counts()
    message_id = _queue(db)
    clock = Clock()
    dispatcher = _dispatcher(db, notify, clock)
    if mode == "down":
        await notify.stop()
    else:
        notify.mode = mode
    try:
        for attempt, wait in ((1, 30), (2, 60), (3, 120)):
            started = clock.now
            assert await dispatcher.run_once() == 1
            message = _message(db, message_id)
            # Visibly unsent: why, how often, and when it is tried next.
            assert message.status == MessageStatus.RETRYING
            assert message.attempts == attempt and message.last_error
            assert message.next_attempt_at == started + timedelta(seconds=wait)
            clock.advance(wait - 1)
            assert await dispatcher.run_once() == 0  # not due yet
            clock.advance(1)
        if mode == "down":
            await notify.start(notify.port)
        notify.mode = "ok"
        assert await dispatcher.run_once() == 1
    finally:
        await dispatcher.stop()
    message = _message(db, message_id)
    assert message.status == MessageStatus.SENT and message.attempts == 4
    assert message.last_error == "" and message.provider_id
    assert len(notify.accepted) == 1 and notify.violations == []
    assert sms_counts() == (before[0] + 1, before[1])
    assert [e.action for e in _audit(db)] == ["message.queued", "message.sent"]


async def test_after_the_last_attempt_the_message_fails_once(
    db: Database, notify: NotifyContract
) -> None:
    before = sms_counts()
    message_id = _queue(db)
    clock = Clock()
    notify.mode = 500
    dispatcher = _dispatcher(db, notify, clock, attempts=3)
    try:
        for _ in range(6):
            await dispatcher.run_once()
            clock.advance(3600)
    finally:
        await dispatcher.stop()
    message = _message(db, message_id)
    assert message.status == MessageStatus.FAILED and message.attempts == 3
    assert message.last_error == "gave up after 3 attempts: 500 Exception: Internal server error"
    assert notify.requests == 3
    assert sms_counts() == (before[0], before[1] + 1)
    failed = [e for e in _audit(db) if e.action == "message.failed"]
    assert len(failed) == 1 and failed[0].detail == {
        "reference": "call-1a2b3c4d",
        "purpose": "invite",
        "channel": "sms",
        "attempts": 3,
        "gave_up": True,
    }
