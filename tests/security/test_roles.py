"""Admins cannot widen their own reach (item 14): no admin changes their own roles (a
second admin must), and with an SMS gateway the outbox page shows no message's text,
so an admin cannot read a caller's link off it."""

from __future__ import annotations

import re

import pytest
from pydantic import SecretStr
from sqlmodel import select

from appliance.config import Settings
from appliance.models import AuditEvent, MessageStatus, OutboundMessage, Role
from appliance.services.audit import Actor
from appliance.services.identity import accounts
from appliance.services.outbox import messages
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_user

pytestmark = pytest.mark.sqlite_only(
    reason="the rules are the account service's and the outbox page's Python; role "
    "changes run on both engines in tests/integration/test_accounts.py"
)

LINK_BODY = "Your link: https://evr.test/v/" + "T" * 43


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The box with an SMS gateway (a webhook on a loopback port nobody listens on)."""
    return settings.model_copy(
        update={
            "notify_adapter": "webhook",
            "notify_webhook_url": "https://127.0.0.1:9/sms",
            "notify_webhook_secret": SecretStr("s" * 40),
        }
    )


async def _admin(server: LiveServer, username: str) -> FormClient:
    client = FormClient(server.base_url)
    await client.sign_in(username, PASSWORD)
    await client.get("/admin/users")
    return client


def _roles(server: LiveServer, username: str) -> set[Role]:
    with server.db.session() as session:
        return accounts.roles_of(session, accounts.require(session, username).id or 0)


async def test_an_admin_cannot_grant_themselves_a_role(live_server: LiveServer) -> None:
    """Tried: an admin posts their own roles with evidence_officer added (the way to
    export evidence with nobody else agreeing). Refused; a second admin can do it."""
    with live_server.db.session() as session:
        add_user(session, "adm1", Role.ADMIN)
        add_user(session, "adm2", Role.ADMIN)
    first = await _admin(live_server, "adm1")
    try:
        response, page = await first.post(
            "/admin/users/adm1/roles", [("roles", "admin"), ("roles", "evidence_officer")]
        )
        assert response.status == 400 and "cannot change your own roles" in page
        assert _roles(live_server, "adm1") == {Role.ADMIN}
    finally:
        await first.close()
    second = await _admin(live_server, "adm2")
    try:
        response, _ = await second.post(
            "/admin/users/adm1/roles", [("roles", "admin"), ("roles", "evidence_officer")]
        )
        assert response.status == 303
    finally:
        await second.close()
    assert _roles(live_server, "adm1") == {Role.ADMIN, Role.EVIDENCE_OFFICER}
    with live_server.db.session() as session:
        changed = session.exec(
            select(AuditEvent).where(AuditEvent.action == "user.roles_changed")
        ).all()
        assert [(e.actor, e.object_id) for e in changed] == [("adm2", "adm1")]


def test_the_service_refuses_a_self_grant_from_any_caller(live_server: LiveServer) -> None:
    """The rule is the service's, not only the page's."""
    with live_server.db.session() as session:
        add_user(session, "adm1", Role.ADMIN)
        with pytest.raises(accounts.AccountError, match="own roles"):
            accounts.set_roles(session, Actor("adm1", "10.0.0.1"), "adm1", {Role.AUDITOR})


async def test_with_a_gateway_the_outbox_shows_no_text_or_link(live_server: LiveServer) -> None:
    """Tried: an admin opens /admin/outbox to read a caller's link off a queued SMS."""
    with live_server.db.session() as session:
        add_user(session, "adm1", Role.ADMIN)
        message = messages.queue_sms(
            session,
            Actor("pc1"),
            settings=live_server.settings,
            to_phone="+447700900123",
            body=LINK_BODY,
            reference="call-1",
        )
        message.status = MessageStatus.FAILED.value  # finished: its row offers Send again
        session.add(message)
    admin = await _admin(live_server, "adm1")
    try:
        response, page = await admin.get("/admin/outbox")
        assert response.status == 200
        assert f'id="message-{message.id}"' in page  # the row is listed
        assert "T" * 43 not in page and "/v/" not in page
        assert re.search(r"not shown", page)
    finally:
        await admin.close()
    with live_server.db.session() as session:
        kept = session.exec(select(OutboundMessage)).one()
        assert kept.body == LINK_BODY  # hidden from the page, not lost
