"""The web app over real HTTPS: sign-in, CSRF, sessions, headers, roles, health and metrics."""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlmodel import select

from appliance import logs
from appliance.config import Settings
from appliance.db import Database
from appliance.models import AuditEvent, Role, User, WebSession, utcnow
from appliance.services.audit import Actor
from appliance.services.identity import accounts
from appliance.web import keys
from appliance.web.access import grants, public
from appliance.web.app import create_app
from tests.support.http import FormClient
from tests.support.live import LiveServer, monitoring_listener

NEW_PASSWORD = "a long enough passphrase"


@pytest.fixture
async def client(live_server: LiveServer) -> AsyncIterator[FormClient]:
    form_client = FormClient(live_server.base_url)
    try:
        yield form_client
    finally:
        await form_client.close()


def _add_user(
    server: LiveServer, username: str, *roles: Role, password: str = NEW_PASSWORD
) -> None:
    with server.db.session() as session:
        user, _ = accounts.create_user(
            session, Actor("test"), username, "Jane Marple", roles, password=password
        )
        user.must_change_password = False
        session.add(user)


def _audit_actions(server: LiveServer) -> list[str]:
    with server.db.session() as session:
        return [e.action for e in session.exec(select(AuditEvent).order_by(AuditEvent.seq))]


async def test_first_sign_in_forces_a_password_change(
    live_server: LiveServer, client: FormClient
) -> None:
    response = await client.sign_in("admin", live_server.admin_password)
    assert response.status == 303
    response, _ = await client.get("/", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/account/password"
    response, _ = await client.get("/admin/users", allow_redirects=False)
    assert response.headers["Location"] == "/account/password"
    response, body = await client.get("/account/password")
    assert "Choose your own before you go on" in body

    response, body = await client.post(
        "/account/password",
        {
            "current_password": "a guess",
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
    )
    assert response.status == 400 and "current password is wrong" in body
    assert "user.password_change_failed" in _audit_actions(live_server)

    response, body = await client.post(
        "/account/password",
        {
            "current_password": live_server.admin_password,
            "new_password": "short",
            "confirm_password": "short",
        },
    )
    assert response.status == 400 and "at least 12 characters" in body

    response, _ = await client.post(
        "/account/password",
        {
            "current_password": live_server.admin_password,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
    )
    assert response.status == 303
    response, body = await client.get("/")
    assert response.status == 200 and "Welcome, Administrator" in body
    assert "user.password_changed" in _audit_actions(live_server)


async def test_post_without_csrf_token_is_refused_and_changes_nothing(
    live_server: LiveServer, client: FormClient
) -> None:
    _add_user(live_server, "boss", Role.ADMIN)
    await client.sign_in("boss", NEW_PASSWORD)
    await client.get("/admin/users")
    before = _audit_actions(live_server)

    tried = {"username": "intruder", "display_name": "X", "roles": "admin"}
    response, body = await client.post("/admin/users", tried, csrf=False)
    assert response.status == 403 and "expired or was not sent from this site" in body
    client.csrf = "forged-token"
    response, _ = await client.post("/admin/users", tried)
    assert response.status == 403
    # A login form posted from elsewhere (no token) signs nobody in either.
    outsider = FormClient(live_server.base_url)
    try:
        response, _ = await outsider.post(
            "/login", {"username": "boss", "password": NEW_PASSWORD}, csrf=False
        )
        assert response.status == 403
        assert outsider.cookie(keys.SESSION_COOKIE) is None
    finally:
        await outsider.close()

    with live_server.db.session() as session:
        assert accounts.get_by_username(session, "intruder") is None
    assert _audit_actions(live_server) == before


async def test_tampered_and_expired_cookies_are_signed_out(
    live_server: LiveServer, client: FormClient
) -> None:
    _add_user(live_server, "pc1", Role.HANDLER)
    await client.sign_in("pc1", NEW_PASSWORD)
    response, _ = await client.get("/", allow_redirects=False)
    assert response.status == 200
    token = client.cookie(keys.SESSION_COOKIE)
    assert token

    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    client.set_cookie(keys.SESSION_COOKIE, tampered)
    response, _ = await client.get("/", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].startswith("/login")

    client.set_cookie(keys.SESSION_COOKIE, token)
    with live_server.db.session() as session:
        web_session = session.exec(select(WebSession)).one()
        web_session.last_seen_at = utcnow() - timedelta(
            minutes=live_server.settings.session_idle_minutes + 1
        )
        session.add(web_session)
    response, _ = await client.get("/", allow_redirects=False)
    assert response.status == 303
    with live_server.db.session() as session:
        assert session.exec(select(WebSession)).one().ended_at is not None


async def test_repeated_wrong_passwords_lock_the_account_and_are_audited(
    live_server: LiveServer, client: FormClient
) -> None:
    _add_user(live_server, "pc2", Role.HANDLER)
    statuses = []
    for _ in range(live_server.settings.login_max_failures):
        response = await client.sign_in("pc2", "not the password")
        statuses.append(response.status)
    # A locked account answers as a wrong password does (usernames cannot be found).
    assert statuses == [401] * len(statuses)
    response = await client.sign_in("pc2", NEW_PASSWORD)
    assert response.status == 401
    assert client.cookie(keys.SESSION_COOKIE) is None
    actions = _audit_actions(live_server)
    assert actions.count("login.failed") == live_server.settings.login_max_failures
    assert "user.locked" in actions and "login.refused" in actions


async def test_sign_out_ends_the_session(live_server: LiveServer, client: FormClient) -> None:
    _add_user(live_server, "pc3", Role.HANDLER)
    await client.sign_in("pc3", NEW_PASSWORD)
    token = client.cookie(keys.SESSION_COOKIE)
    await client.get("/")
    response, _ = await client.post("/logout")
    assert response.status == 303
    # Replaying the old cookie does not bring the session back.
    client.set_cookie(keys.SESSION_COOKIE, token)
    response, _ = await client.get("/", allow_redirects=False)
    assert response.status == 303
    assert "logout" in _audit_actions(live_server)


async def test_roles_guard_pages(live_server: LiveServer, client: FormClient) -> None:
    _add_user(live_server, "pc4", Role.HANDLER)
    await client.sign_in("pc4", NEW_PASSWORD)
    for path in ("/admin/users", "/audit"):
        response, _ = await client.get(path, allow_redirects=False)
        assert response.status == 403, path
    await client.get("/")
    response, _ = await client.post("/admin/users/pc4/roles", [("roles", "admin")])
    assert response.status == 403
    with live_server.db.session() as session:
        assert accounts.roles_of(session, accounts.require(session, "pc4").id) == {Role.HANDLER}


async def test_admin_manages_users_through_the_page(
    live_server: LiveServer, client: FormClient
) -> None:
    _add_user(live_server, "boss", Role.ADMIN)
    await client.sign_in("boss", NEW_PASSWORD)
    await client.get("/admin/users")
    response, body = await client.post(
        "/admin/users",
        [
            ("username", "pc5"),
            ("display_name", "Sam Handler"),
            ("roles", "handler"),
            ("roles", "rvr_officer"),
        ],
    )
    assert response.status == 200
    one_time = re.search(r'id="one-time-password">([^<]+)<', body).group(1)
    await client.get("/admin/users")
    # Ordinary roles: a privileged one would wait for a second admin (tests/security).
    response, _ = await client.post("/admin/users/pc5/roles", [("roles", "rvr_officer")])
    assert response.status == 303
    response, _ = await client.post("/admin/users/admin/disable")
    assert response.status == 303
    response, body = await client.post("/admin/users/boss/disable")
    assert response.status == 400 and "last active admin" in body
    response, _ = await client.post("/admin/users/pc5/disable")
    assert response.status == 303
    with live_server.db.session() as session:
        pc5 = accounts.require(session, "pc5")
        assert pc5.disabled and pc5.must_change_password
        assert accounts.roles_of(session, pc5.id) == {Role.RVR_OFFICER}
    newcomer = FormClient(live_server.base_url)
    try:
        assert (await newcomer.sign_in("pc5", one_time)).status == 401
    finally:
        await newcomer.close()
    actions = _audit_actions(live_server)
    for action in ("user.created", "user.roles_changed", "user.disabled"):
        assert action in actions


async def test_security_headers_on_pages_errors_and_static_files(
    live_server: LiveServer, client: FormClient
) -> None:
    response, _ = await client.get("/login")
    assert response.headers["Cache-Control"] == "no-store"
    set_cookie = response.headers.get("Set-Cookie", "")
    assert "Secure" in set_cookie and "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    for path, status in (("/login", 200), ("/no/such/page", 404), ("/static/app.css", 200)):
        response, _ = await client.get(path, allow_redirects=False)
        assert response.status == status, path
        headers = response.headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        connect = next(d for d in csp.split("; ") if d.startswith("connect-src"))
        # The box's public origin by name (old WebKit does not count wss: as 'self'), and
        # the host this request reached (127.0.0.1:<port> here).
        assert connect.split()[1:] == [
            "'self'",
            "wss://evr.test",
            f"wss://127.0.0.1:{live_server.settings.port}",
        ], connect
        assert headers["Strict-Transport-Security"].startswith("max-age=")
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "camera=()" in headers["Permissions-Policy"]
        assert "microphone=()" in headers["Permissions-Policy"]
        assert headers["X-Request-Id"]

    _add_user(live_server, "pc6", Role.HANDLER)
    response = await client.sign_in("pc6", NEW_PASSWORD)
    session_cookie = response.cookies[keys.SESSION_COOKIE]
    assert session_cookie["secure"] and session_cookie["httponly"]
    assert session_cookie["samesite"] == "Strict"


async def test_open_redirect_after_sign_in_is_refused(
    live_server: LiveServer, client: FormClient
) -> None:
    _add_user(live_server, "pc7", Role.HANDLER)
    await client.get("/login")
    response, _ = await client.post(
        "/login", {"username": "pc7", "password": NEW_PASSWORD, "next": "//evil.example/"}
    )
    assert response.headers["Location"] == "/"


async def test_health_readiness_and_metrics(live_server: LiveServer, client: FormClient) -> None:
    """Liveness on the callers' port; readiness and metrics on the monitoring listener."""
    response, body = await client.get("/healthz")
    assert response.status == 200 and json.loads(body)["status"] == "ok"
    async with monitoring_listener(live_server) as base:
        monitor = FormClient(base)
        try:
            response, body = await monitor.get("/readyz")
            assert response.status == 200, body
            checks = set(json.loads(body)["checks"])
            assert checks == {"database", "data_dir_writable", "disk_space"}
            # Refused (no session), still counted by its route's template, not its path.
            # (A GET would be a 405, which aiohttp matches to no route: "unmatched".)
            await client.post("/admin/users/someone/roles", {})
            response, body = await monitor.get("/metrics")
        finally:
            await monitor.close()
    assert response.status == 200
    assert 'route="/admin/users/{username}/roles"' in body
    assert "someone" not in body
    assert "evr_http_request_duration_seconds_bucket" in body
    assert "process_resident_memory_bytes" in body
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: make test installs the Debian package prometheus"
    check = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr


async def test_readiness_fails_when_disk_is_below_the_threshold(
    live_server: LiveServer, client: FormClient
) -> None:
    live_server.settings.min_free_bytes = 1 << 62
    async with monitoring_listener(live_server) as base:
        monitor = FormClient(base)
        try:
            response, body = await monitor.get("/readyz")
        finally:
            await monitor.close()
    assert response.status == 503
    checks = json.loads(body)["checks"]
    assert checks["disk_space"]["ok"] is False and checks["database"]["ok"] is True


async def test_logs_carry_request_ids_but_no_names_or_numbers(
    live_server: LiveServer, client: FormClient
) -> None:
    """JSON log lines as the appliance writes them, through a whole admin flow."""
    stream = io.StringIO()
    handler = logs.make_handler("json", stream)
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    _add_user(live_server, "pc8", Role.ADMIN)
    await client.sign_in("pc8", NEW_PASSWORD)
    await client.get("/admin/users")
    await client.post(
        "/admin/users",
        [
            ("username", "pc9"),
            ("display_name", "Jane Marple 07700 900123"),
            ("roles", "handler"),
        ],
    )
    await client.get("/no-such-page?phone=07700900123&name=Jane+Marple")
    root.removeHandler(handler)
    root.setLevel(old_level)
    text = stream.getvalue()
    assert "Marple" not in text and "07700" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    requests = [line for line in lines if line["logger"] == "evr.http"]
    assert {"GET /admin/users 200", "POST /admin/users 200", "GET unmatched 404"} <= {
        line["message"] for line in requests
    }
    assert all(re.fullmatch(r"[0-9a-f]{16}", line["request_id"]) for line in requests)
    assert len({line["request_id"] for line in requests}) == len(requests)
    with live_server.db.session() as session:
        assert session.exec(select(User).where(User.username == "pc9")).one()


async def test_browsers_get_error_pages_in_the_layout(
    live_server: LiveServer, client: FormClient
) -> None:
    html = {"Accept": "text/html,application/xhtml+xml"}
    response, body = await client.get("/no/such/page", headers=html)
    assert response.status == 404
    assert "There is no page at this address." in body and "<main" in body
    _add_user(live_server, "pc10", Role.HANDLER)
    await client.sign_in("pc10", NEW_PASSWORD)
    response, body = await client.get("/admin/users", headers=html)
    assert response.status == 403 and "Your role does not allow this." in body
    response, body = await client.get("/no/such/page")
    assert response.status == 404 and "<main" not in body


async def test_auditor_reads_and_verifies_the_trail(
    live_server: LiveServer, client: FormClient
) -> None:
    _add_user(live_server, "dpo1", Role.AUDITOR)
    await client.sign_in("dpo1", NEW_PASSWORD)
    response, body = await client.get("/audit")
    assert response.status == 200
    assert "login.succeeded" in body and "user.created" in body
    assert "The chain holds" not in body
    response, body = await client.get("/audit?verify=1")
    assert re.search(r"The chain holds: \d+ events checked", body)


async def test_pages_grant_camera_only_when_they_declare_it(
    settings: Settings, db: Database, aiohttp_client: Any
) -> None:
    app = create_app(settings, db)

    @public
    @grants("camera", "microphone")
    async def camera_page(request: web.Request) -> web.Response:
        return web.Response(text="camera")

    app.router.add_get("/camera-test", camera_page)
    client = await aiohttp_client(app)
    granted = (await client.get("/camera-test")).headers["Permissions-Policy"]
    assert "camera=(self)" in granted and "microphone=(self)" in granted
    assert "geolocation=()" in granted
    plain = (await client.get("/healthz")).headers["Permissions-Policy"]
    assert "camera=()" in plain and "microphone=()" in plain


async def test_a_route_without_an_access_rule_is_refused(
    settings: Settings, db: Database, aiohttp_client: Any
) -> None:
    app = create_app(settings, db)

    async def forgotten(request: web.Request) -> web.Response:
        return web.Response(text="secret")

    app.router.add_get("/forgotten", forgotten)
    client = await aiohttp_client(app)
    response = await client.get("/forgotten")
    assert response.status == 403 and "secret" not in await response.text()
