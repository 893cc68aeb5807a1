"""Item 24: the box's outbound HTTP clients never follow a redirect.

The attack: a compromised receiver (the force's SMS gateway, GOV.UK Notify's address
behind a proxy, the CAD's webhook) answers 307 or 308 with a ``Location`` of its
choosing; a client that follows it re-sends the signed body (a caller's phone number, a
CAD event) there. Here that elsewhere is a real receiver on loopback that would accept
the body: it must see no request, and the delivery must fail saying why.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from appliance.db import Database
from appliance.notify import Delivery, GovukNotifyNotifier, SmsMessage, WebhookNotifier
from appliance.notify.cad import CadSender
from tests.support.cad_receiver import SECRET as CAD_SECRET
from tests.support.cad_receiver import running_receiver
from tests.support.sms_gateways import NotifyContract, WebhookGateway

pytestmark = pytest.mark.sqlite_only(
    reason="what an HTTP client does with a 3xx; the CAD sender's bookkeeping runs on "
    "both engines in tests/integration/test_cad_webhook.py"
)

SMS_SECRET = "a-shared-secret-of-forty-characters-0123"
SERVICE_ID = "26785a09-ab16-4eb0-8407-a37497a57506"
NOTIFY_SECRET = "3d844edf-8d35-48ac-975b-e847b4f122b0"
TEMPLATE_ID = "f33517ff-2a88-4f6e-b855-c550268ce08a"
SMS = SmsMessage("+447700900456", "Wessex: your video call link https://evr.test/j/x", "c-1")


@asynccontextmanager
async def bouncer(status: int, location: str) -> AsyncIterator[str]:
    """A receiver gone bad: every POST is answered ``status`` with ``Location``."""

    async def bounce(_request: web.Request) -> web.Response:
        return web.Response(status=status, headers={"Location": location})

    app = web.Application()
    app.router.add_post("/{tail:.*}", bounce)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def started(server: WebhookGateway | NotifyContract) -> AsyncIterator[None]:
    await server.start()
    try:
        yield
    finally:
        await server.stop()


async def test_the_sms_webhook_does_not_follow_a_redirect() -> None:
    """307 to a gateway that would take the message: it gets nothing, the message fails
    with a reason naming the redirect; sent to that gateway directly, it is sent."""
    elsewhere = WebhookGateway(SMS_SECRET)
    async with started(elsewhere), bouncer(307, elsewhere.url) as url:
        bounced = WebhookNotifier(url + "/sms", SMS_SECRET, 10.0)
        direct = WebhookNotifier(elsewhere.url, SMS_SECRET, 10.0)
        try:
            result = await bounced.send(SMS)
            assert elsewhere.requests == 0
            assert result.status is Delivery.FAILED
            assert result.error == "redirected (307 to 127.0.0.1); redirects are never followed"
            assert (await direct.send(SMS)).status is Delivery.SENT
            assert elsewhere.requests == 1
        finally:
            await bounced.close()
            await direct.close()


async def test_govuk_notify_does_not_follow_a_redirect() -> None:
    """308 from Notify's address (a proxy gone bad): no request reaches the server it
    names, the message fails (not retried); the real API still takes it."""
    notify = NotifyContract(SERVICE_ID, NOTIFY_SECRET, TEMPLATE_ID)
    key = f"evr_live-{SERVICE_ID}-{NOTIFY_SECRET}"
    async with started(notify), bouncer(308, notify.base_url + "/v2/notifications/sms") as url:
        bounced = GovukNotifyNotifier(key, TEMPLATE_ID, url, 2.0)
        direct = GovukNotifyNotifier(key, TEMPLATE_ID, notify.base_url, 2.0)
        try:
            result = await bounced.send(SMS)
            assert notify.requests == 0
            assert result.status is Delivery.FAILED
            assert result.error and "redirects are never followed" in result.error
            assert (await direct.send(SMS)).status is Delivery.SENT
        finally:
            await bounced.close()
            await direct.close()


async def test_the_cad_sender_does_not_follow_a_redirect(db: Database) -> None:
    """307 to a CAD receiver that would take the signed event: it sees no attempt, the
    answer is final (no retry) and says why; posted to the receiver itself, delivered."""
    event_id = str(uuid.uuid4())
    occurred = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    event = {
        "id": event_id,
        "event": "call.ended",
        "occurredAt": occurred,
        "schemaVersion": 1,
        "incident": None,
        "data": {},
    }
    body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
    async with running_receiver() as receiver, bouncer(307, receiver.url) as url:
        bounced = CadSender(db, url + "/cad", CAD_SECRET, timeout_s=2.0, max_attempts=3)
        direct = CadSender(db, receiver.url, CAD_SECRET, timeout_s=2.0, max_attempts=3)
        try:
            answer = await bounced.post(event_id, body)
            assert receiver.attempts == []
            assert (answer.delivered, answer.retry, answer.status) == (False, False, 307)
            assert answer.error == "redirected (307 to 127.0.0.1); redirects are never followed"
            assert (await direct.post(event_id, body)).delivered
            assert receiver.violations == [] and list(receiver.events) == [event_id]
        finally:
            await bounced.http.close()
            await direct.http.close()
