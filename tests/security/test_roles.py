"""Admins cannot widen anyone's reach alone (item 14): no admin changes their own roles;
a privileged role asked for on the web (for an existing account or a new one) waits
until a second admin approves it, audited at each step; the box's shell gives roles
directly (break-glass, audited as the CLI). With an SMS gateway the outbox page shows no
message's text, so an admin cannot read a caller's link off it."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlmodel import col, select

from appliance.cli import identity
from appliance.config import Settings
from appliance.models import (
    AuditEvent,
    GrantState,
    MessageStatus,
    OutboundMessage,
    Role,
    RoleGrant,
    User,
)
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


def _audit(server: LiveServer, prefix: str) -> list[AuditEvent]:
    with server.db.session() as session:
        rows = session.exec(select(AuditEvent).order_by(col(AuditEvent.seq))).all()
        return [e for e in rows if e.action.startswith(prefix)]


def _grants(server: LiveServer) -> list[RoleGrant]:
    with server.db.session() as session:
        return list(session.exec(select(RoleGrant).order_by(col(RoleGrant.id))).all())


async def test_an_admin_cannot_grant_themselves_a_role(live_server: LiveServer) -> None:
    """Tried: an admin posts their own roles with evidence_officer added (the way to
    export evidence with nobody else agreeing). Refused. A second admin asking for it
    leaves it pending; neither of the two can approve it, a third admin can."""
    with live_server.db.session() as session:
        for name in ("adm1", "adm2", "adm3"):
            add_user(session, name, Role.ADMIN)
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
        assert "notice=roles_pending" in response.headers["Location"]
        (grant,) = _grants(live_server)
        response, page = await second.post(f"/admin/grants/{grant.id}/approve")
        assert response.status == 400 and "another admin must approve" in page
    finally:
        await second.close()
    assert _roles(live_server, "adm1") == {Role.ADMIN}
    first = await _admin(live_server, "adm1")
    try:
        response, page = await first.post(f"/admin/grants/{grant.id}/approve")
        assert response.status == 400 and "approve a role for yourself" in page
    finally:
        await first.close()
    assert _roles(live_server, "adm1") == {Role.ADMIN}
    third = await _admin(live_server, "adm3")
    try:
        _, page = await third.get("/admin/users")
        assert f'action="/admin/grants/{grant.id}/approve"' in page
        response, _ = await third.post(f"/admin/grants/{grant.id}/approve")
        assert response.status == 303
    finally:
        await third.close()
    assert _roles(live_server, "adm1") == {Role.ADMIN, Role.EVIDENCE_OFFICER}
    steps = _audit(live_server, "user.role_grant_")
    assert [(e.action, e.actor, e.object_id, e.detail["role"]) for e in steps] == [
        ("user.role_grant_requested", "adm2", "adm1", "evidence_officer"),
        ("user.role_grant_approved", "adm3", "adm1", "evidence_officer"),
    ]
    assert _audit(live_server, "user.roles_changed") == []  # nothing given before approval


async def test_a_new_account_gets_its_privileged_roles_only_when_another_admin_approves(
    live_server: LiveServer,
) -> None:
    """Tried: an admin alone creates an accomplice account holding evidence_officer and
    admin. The account is made with its ordinary role only; the two privileged roles
    wait, the creator cannot approve them, and the accomplice cannot export."""
    with live_server.db.session() as session:
        add_user(session, "adm1", Role.ADMIN)
        add_user(session, "adm2", Role.ADMIN)
    first = await _admin(live_server, "adm1")
    try:
        response, page = await first.post(
            "/admin/users",
            [
                ("username", "mate"),
                ("display_name", "Accomplice"),
                ("roles", "handler"),
                ("roles", "evidence_officer"),
                ("roles", "admin"),
            ],
        )
        assert response.status == 200 and 'id="pending-roles"' in page
        for grant in _grants(live_server):
            response, page = await first.post(f"/admin/grants/{grant.id}/approve")
            assert response.status == 400 and "another admin must approve" in page
    finally:
        await first.close()
    assert _roles(live_server, "mate") == {Role.HANDLER}
    assert [(g.role, g.state) for g in _grants(live_server)] == [
        ("admin", GrantState.PENDING.value),
        ("evidence_officer", GrantState.PENDING.value),
    ]
    (created,) = [e for e in _audit(live_server, "user.created") if e.object_id == "mate"]
    assert created.detail == {"roles": ["handler"], "pending": ["admin", "evidence_officer"]}
    second = await _admin(live_server, "adm2")
    try:
        admin_grant, officer_grant = _grants(live_server)
        response, _ = await second.post(f"/admin/grants/{admin_grant.id}/refuse")
        assert response.status == 303
        response, _ = await second.post(f"/admin/grants/{officer_grant.id}/approve")
        assert response.status == 303
        response, page = await second.post(f"/admin/grants/{admin_grant.id}/approve")
        assert response.status == 400 and "not waiting" in page  # refused is final
    finally:
        await second.close()
    assert _roles(live_server, "mate") == {Role.HANDLER, Role.EVIDENCE_OFFICER}
    steps = _audit(live_server, "user.role_grant_")
    assert [(e.action, e.actor, e.detail["role"]) for e in steps] == [
        ("user.role_grant_requested", "adm1", "admin"),
        ("user.role_grant_requested", "adm1", "evidence_officer"),
        ("user.role_grant_refused", "adm2", "admin"),
        ("user.role_grant_approved", "adm2", "evidence_officer"),
    ]


async def test_an_ordinary_role_and_a_removal_apply_at_once(live_server: LiveServer) -> None:
    """What stays one admin's job: removing roles and giving handler or rvr_officer.
    Unticking a role that was waiting withdraws its grant."""
    with live_server.db.session() as session:
        add_user(session, "adm1", Role.ADMIN)
        add_user(session, "pc1", Role.HANDLER, Role.SUPERVISOR)
    admin = await _admin(live_server, "adm1")
    try:
        response, _ = await admin.post(
            "/admin/users/pc1/roles", [("roles", "rvr_officer"), ("roles", "auditor")]
        )
        assert "notice=roles_pending" in response.headers["Location"]
        assert _roles(live_server, "pc1") == {Role.RVR_OFFICER}
        response, _ = await admin.post("/admin/users/pc1/roles", [("roles", "rvr_officer")])
        assert response.headers["Location"].endswith("notice=roles")
    finally:
        await admin.close()
    assert _roles(live_server, "pc1") == {Role.RVR_OFFICER}
    assert [(g.role, g.state, g.decided_by) for g in _grants(live_server)] == [
        ("auditor", GrantState.WITHDRAWN.value, "adm1")
    ]


def test_only_an_active_admin_other_than_asker_and_holder_approves(
    live_server: LiveServer,
) -> None:
    """The rule is the service's, not only the page's: the asker, the account that would
    hold the role, a non-admin and a disabled admin are all refused."""
    with live_server.db.session() as session:
        for name in ("adm1", "adm2", "adm3", "gone"):
            add_user(session, name, Role.ADMIN)
        add_user(session, "pc1", Role.HANDLER)
        accounts.set_disabled(session, Actor("adm1"), "gone", True)
        held = accounts.set_roles(
            session, Actor("adm1"), "adm2", {Role.ADMIN, Role.AUDITOR}, hold_privileged=True
        )
        assert held == {Role.AUDITOR}
        (grant,) = accounts.pending_grants(session)
        for who, why in (
            ("adm1", "another admin must approve"),
            ("adm2", "for yourself"),
            ("pc1", "only an active admin"),
            ("gone", "only an active admin"),
        ):
            with pytest.raises(accounts.AccountError, match=why):
                accounts.decide_grant(session, Actor(who), grant.grant.id or 0, approve=True)
        accounts.decide_grant(session, Actor("adm3"), grant.grant.id or 0, approve=True)
        assert accounts.roles_of(session, grant.grant.user_id) == {Role.ADMIN, Role.AUDITOR}


async def test_an_admin_cannot_take_over_a_privileged_account_by_resetting_it(
    live_server: LiveServer,
) -> None:
    """Tried: an admin resets a second admin's and an evidence officer's password on the
    web (learning the one-time password would let them sign in as either). Refused, the
    passwords unchanged; a handler's reset still works, and the box shell resets anyone."""
    with live_server.db.session() as session:
        add_user(session, "adm1", Role.ADMIN)
        add_user(session, "adm2", Role.ADMIN)
        add_user(session, "eo1", Role.EVIDENCE_OFFICER)
        add_user(session, "pc1", Role.HANDLER)
        before = {u.username: u.password_hash for u in session.exec(select(User)).all()}
    admin = await _admin(live_server, "adm1")
    try:
        _, page = await admin.get("/admin/users")
        assert "evr user reset-password adm2" in page
        assert 'action="/admin/users/adm2/reset-password"' not in page
        for victim in ("adm2", "eo1"):
            response, page = await admin.post(f"/admin/users/{victim}/reset-password")
            assert response.status == 400 and "reset on the box" in page, victim
        response, page = await admin.post("/admin/users/pc1/reset-password")
        assert response.status == 200 and "Password reset" in page
    finally:
        await admin.close()
    with live_server.db.session() as session:
        after = {u.username: u.password_hash for u in session.exec(select(User)).all()}
    assert after["adm2"] == before["adm2"] and after["eo1"] == before["eo1"]
    assert after["pc1"] != before["pc1"]
    assert [e.object_id for e in _audit(live_server, "user.password_reset")] == ["pc1"]
    args = argparse.Namespace(username="eo1")
    assert identity.cmd_user_reset_password(live_server.settings, args) == 0
    with live_server.db.session() as session:
        assert accounts.get_by_username(session, "eo1").password_hash != before["eo1"]


def test_a_request_left_a_week_lapses_and_cannot_be_approved(live_server: LiveServer) -> None:
    """An approval weeks later would grant on a need nobody re-checked: an old request is
    no longer listed, its approval is refused, and asking again makes a fresh one."""
    with live_server.db.session() as session:
        for name in ("adm1", "adm2"):
            add_user(session, name, Role.ADMIN)
        add_user(session, "pc1", Role.HANDLER)
        accounts.set_roles(
            session, Actor("adm1"), "pc1", {Role.HANDLER, Role.AUDITOR}, hold_privileged=True
        )
        (waiting,) = accounts.pending_grants(session)
        old = waiting.grant
        old.requested_at = old.requested_at - accounts.GRANT_LIFETIME - timedelta(minutes=1)
        session.add(old)
        session.flush()
        assert accounts.pending_grants(session) == []
        with pytest.raises(accounts.AccountError, match="lapsed"):
            accounts.decide_grant(session, Actor("adm2"), old.id or 0, approve=True)
        assert accounts.roles_of(session, old.user_id) == {Role.HANDLER}
        accounts.set_roles(
            session, Actor("adm1"), "pc1", {Role.HANDLER, Role.AUDITOR}, hold_privileged=True
        )
        (fresh,) = accounts.pending_grants(session)
        assert fresh.grant.id != old.id
        accounts.decide_grant(session, Actor("adm2"), fresh.grant.id or 0, approve=True)
        assert accounts.roles_of(session, old.user_id) == {Role.HANDLER, Role.AUDITOR}


def test_the_box_shell_gives_roles_directly_audited_as_the_cli(live_server: LiveServer) -> None:
    """Break-glass: ``evr user add`` and ``evr user set-roles`` on the box give privileged
    roles at once (a box with one admin has no second), recorded with a ``cli:`` actor;
    a grant waiting for the same role is withdrawn, nothing being left to approve."""
    settings = live_server.settings
    with live_server.db.session() as session:
        add_user(session, "adm1", Role.ADMIN)
        add_user(session, "pc1", Role.HANDLER)
        accounts.set_roles(
            session, Actor("adm1"), "pc1", {Role.HANDLER, Role.SUPERVISOR}, hold_privileged=True
        )
    args = argparse.Namespace(
        username="adm9", name="Second", role=["admin"], password_stdin=False, break_glass=False
    )
    assert identity.cmd_user_add(settings, args) == 0
    args = argparse.Namespace(username="pc1", roles=["handler", "supervisor"])
    assert identity.cmd_user_set_roles(settings, args) == 0
    assert _roles(live_server, "adm9") == {Role.ADMIN}
    assert _roles(live_server, "pc1") == {Role.HANDLER, Role.SUPERVISOR}
    assert [(g.state, g.decided_by.startswith("cli:")) for g in _grants(live_server)] == [
        (GrantState.WITHDRAWN.value, True)
    ]
    shell = [e for e in _audit(live_server, "user.") if e.source == "cli"]
    assert [(e.action, e.object_id) for e in shell] == [
        ("user.created", "adm9"),
        ("user.roles_changed", "pc1"),
        ("user.role_grant_withdrawn", "pc1"),
    ]
    assert all(e.actor.startswith("cli:") for e in shell)


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
