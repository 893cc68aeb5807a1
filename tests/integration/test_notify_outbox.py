"""The default adapter over the real app: messages are kept and shown at /admin/outbox.

The app's own dispatcher (started with the app) stores what is queued; an admin
sees it, over real HTTPS, and can queue it again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlmodel import select

from appliance.config import Settings
from appliance.db import Database
from appliance.models import AuditEvent, MessageStatus, OutboundMessage, Role, utcnow
from appliance.notify import DeliveryResult, OutboxNotifier
from appliance.notify.dispatcher import Dispatcher
from appliance.services.audit import Actor
from appliance.services.calls import invites
from appliance.services.identity import accounts
from appliance.services.intake import incidents
from appliance.services.outbox import messages
from appliance.services.outbox.messages import MessageError, RetryPolicy
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.sms_gateways import sms_counts

PASSWORD = "a long enough passphrase"
PHONE = "+447700900789"
BODY = "Wessex: here is the link for your video call: https://evr.test/j/outbox-token"


# Default settings for messages queued outside an app (the RVR gate reads its lists).
SMS_SETTINGS = Settings()


@pytest.fixture
async def client(live_server: LiveServer) -> AsyncIterator[FormClient]:
    form_client = FormClient(live_server.base_url)
    try:
        yield form_client
    finally:
        await form_client.close()


def _add_user(server: LiveServer, username: str, *roles: Role) -> None:
    with server.db.session() as session:
        user, _ = accounts.create_user(
            session, Actor("test"), username, "Jane Marple", roles, password=PASSWORD
        )
        user.must_change_password = False
        session.add(user)


def _queue(db: Database, reference: str) -> int:
    with db.session() as session:
        message = messages.queue_sms(
            session,
            Actor("handler1"),
            settings=SMS_SETTINGS,
            to_phone=PHONE,
            body=BODY,
            reference=reference,
        )
        return message.id or 0


async def _wait_for(db: Database, message_id: int, status: MessageStatus, within_s: float) -> None:
    for _ in range(int(within_s * 10)):
        with db.session() as session:
            message = session.get(OutboundMessage, message_id)
            if message is not None and message.status == status:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"message {message_id} did not become {status} within {within_s} s")


async def test_the_outbox_keeps_messages_and_shows_them_to_admins(
    live_server: LiveServer, client: FormClient
) -> None:

    before = sms_counts()
    assert live_server.settings.notify_adapter == "outbox"
    message_id = _queue(live_server.db, "call-outbox-1")
    # The app's dispatcher picks it up at its next tick (every 5 s).
    await _wait_for(live_server.db, message_id, MessageStatus.STORED, within_s=8)

    _add_user(live_server, "handler9", Role.HANDLER)
    await client.sign_in("handler9", PASSWORD)
    response, _ = await client.get("/admin/outbox")
    assert response.status == 403
    await client.post("/logout")

    _add_user(live_server, "boss", Role.ADMIN)
    await client.sign_in("boss", PASSWORD)
    response, body = await client.get("/")
    assert 'href="/admin/outbox"' in body
    response, body = await client.get("/admin/outbox")
    assert response.status == 200
    assert f'id="message-{message_id}"' in body
    # The number in national format, as staff read numbers everywhere.
    assert BODY in body and "07700 900789" in body and "call-outbox-1" in body
    assert ">stored<" in body
    assert f'class="sms-parts">1 <small>({len(BODY)} GSM-7)</small>' in body  # parts billed

    # Queue it again: a new row, stored promptly because the handler pokes the dispatcher.
    response, _ = await client.post(f"/admin/outbox/{message_id}/resend")
    assert response.status == 303 and response.headers["Location"] == "/admin/outbox?notice=resent"
    with live_server.db.session() as session:
        rows = messages.recent(session)
    assert [m.id for m in rows][1:] == [message_id]
    copy_id = rows[0].id or 0
    await _wait_for(live_server.db, copy_id, MessageStatus.STORED, within_s=2)
    response, body = await client.get("/admin/outbox?notice=resent")
    assert "Queued again." in body
    # Newest first.
    assert body.index(f'id="message-{copy_id}"') < body.index(f'id="message-{message_id}"')
    response, _ = await client.post("/admin/outbox/999999/resend")
    assert response.status == 404

    # Stored is not sent: the SMS counters do not move.
    assert sms_counts() == before
    with live_server.db.session() as session:
        events = list(session.exec(select(AuditEvent).order_by(AuditEvent.seq)).all())
    actions = [e.action for e in events]
    assert actions.count("message.stored") == 2 and "message.resent" in actions
    resent = next(e for e in events if e.action == "message.resent")
    assert resent.actor == "boss" and resent.detail["of"] == message_id
    everything = json.dumps([e.model_dump(mode="json") for e in events])
    assert PHONE not in everything and BODY not in everything


async def test_a_message_still_being_sent_cannot_be_queued_again(db: Database) -> None:
    message_id = _queue(db, "in-flight")
    with db.session() as session, pytest.raises(MessageError, match="still being sent"):
        message = session.get(OutboundMessage, message_id)
        assert message is not None
        messages.resend(session, SMS_SETTINGS, Actor("boss"), message)


async def test_queue_refuses_what_it_cannot_send(db: Database) -> None:
    cases = [
        ({"to_phone": "07700 900123"}, "E.164"),
        ({"body": ""}, "1 to 918 characters"),
        ({"body": "x" * 919}, "1 to 918 characters"),
        ({"reference": "has spaces in it"}, "the reference"),
    ]
    for change, complaint in cases:
        fields = {"to_phone": PHONE, "body": BODY, "reference": "ok-ref", **change}
        with db.session() as session, pytest.raises(MessageError, match=complaint):
            messages.queue_sms(session, Actor("handler1"), settings=SMS_SETTINGS, **fields)
    with db.session() as session:
        assert messages.recent(session) == []


async def test_an_invite_wired_to_its_incident_and_call(db: Database) -> None:
    """What the intake wiring will do: queue the invite's SMS against its incident and call."""
    with db.session() as session:
        user, _ = accounts.create_user(
            session, Actor("test"), "handler1", "Jane Marple", [Role.HANDLER], password=PASSWORD
        )
        incident = incidents.create(
            session,
            Actor("handler1"),
            user,
            cad_reference="WX-2026-0001",
            grade=3,
            category="Burglary",
            caller_name="Ann Other",
            caller_phone="07700 900789",
        )
        _, call, token = invites.create_invite(
            session, Actor("handler1"), incident, user, timedelta(hours=1)
        )
        message = messages.queue_sms(
            session,
            Actor("handler1"),
            settings=SMS_SETTINGS,
            to_phone=incident.caller_phone,
            body=BODY,
            reference=call.public_id,
            incident_id=incident.id,
            call_public_id=call.public_id,
        )
        incident_id, message_id = incident.id or 0, message.id
    dispatcher = Dispatcher(db, OutboxNotifier(), RetryPolicy(), timeout_s=1)
    assert await dispatcher.run_once() == 1
    await dispatcher.stop()
    with db.session() as session:
        listed = messages.for_incident(session, incident_id)
        assert [m.id for m in listed] == [message_id]
        assert listed[0].status == MessageStatus.STORED and listed[0].to_phone == PHONE
        assert messages.due(session, utcnow() + timedelta(days=1), 10) == []
        stored = next(e for e in session.exec(select(AuditEvent)) if e.action == "message.stored")
        assert stored.detail["call"] == listed[0].call_public_id
    assert token not in json.dumps(stored.detail)
    # An outcome is recorded once: a second result for a finished message is refused.
    before = sms_counts()
    with db.session() as session, pytest.raises(MessageError, match="already stored"):
        again = session.get(OutboundMessage, message_id)
        assert again is not None
        messages.record_result(session, again, DeliveryResult.sent("x"), utcnow(), RetryPolicy())
    assert sms_counts() == before
