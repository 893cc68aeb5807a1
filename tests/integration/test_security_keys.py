"""Security keys (WebAuthn) as the box's own accounts' second factor, over real HTTPS
with a software key that signs as a FIDO2 key does (tests/support/security_key.py):
enrolment by name (several keys; recovery codes with the first factor only), sign-in
with a key after the password, removal, the shell's reset, and the refusals: an answer
to another challenge, another account's key, a replayed or cloned assertion (its counter
did not grow), a key the box does not know. Each audited."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from appliance.config import Settings, load_settings
from appliance.models import AuditEvent, RecoveryCode, Role, SecurityKey
from tests.support.cli import run_evr
from tests.support.http import FormClient
from tests.support.live import LiveServer, free_port
from tests.support.security_key import SoftKey
from tests.support.staff import PASSWORD, add_user

pytestmark = pytest.mark.sqlite_only(
    reason="the checks are py_webauthn's and the second-factor service's Python over one "
    "plain table; the migration runs on both engines in test_migrations.py"
)

ORIGIN = "https://evr.test"  # the box's public_url: its host is the RP id
CODES_RE = re.compile(r"<li><code>([0-9a-f-]{14})</code></li>")


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(
        data_dir=tmp_path / "var",
        database_url=database_url,
        min_free_bytes=0,
        public_url=ORIGIN,
        port=free_port(),
        local_admin_totp_required=True,
    )


@pytest.fixture
async def boss(live_server: LiveServer) -> AsyncIterator[FormClient]:
    with live_server.db.session() as session:
        add_user(session, "boss", Role.ADMIN)
        add_user(session, "deputy", Role.ADMIN)
    client = FormClient(live_server.base_url)
    try:
        yield client
    finally:
        await client.close()


async def _options(client: FormClient, path: str) -> dict[str, Any]:
    async with client.session.post(
        client.base_url + path, headers={"X-CSRF-Token": client.csrf}
    ) as response:
        assert response.status == 200, await response.text()
        options: dict[str, Any] = json.loads(await response.text())
    return options


async def _enrol(client: FormClient, key: SoftKey, name: str) -> tuple[int, str]:
    await client.get("/account/security-keys")
    options = await _options(client, "/account/security-keys/options")
    assert options["rp"]["id"] == "evr.test"
    response, page = await client.post(
        "/account/security-keys", {"name": name, "credential": key.create(options)}
    )
    return response.status, page


async def _second_step(
    client: FormClient, key: SoftKey, *, answer: str | None = None
) -> tuple[int, str]:
    """Ask for the key's challenge and post ``answer``, or the key's own answer to it."""
    await client.get("/login/second-factor")
    options = await _options(client, "/login/second-factor/key-options")
    response, page = await client.post(
        "/login/second-factor/key",
        {"credential": answer or key.get(options), "next": "/admin/users"},
    )
    return response.status, page


def _events(server: LiveServer, action: str) -> list[dict[str, Any]]:
    with server.db.reader() as session:
        rows = session.exec(select(AuditEvent).where(AuditEvent.action == action)).all()
        return [row.detail for row in rows]


async def _signed_in_with_a_key(
    server: LiveServer, client: FormClient, username: str, key: SoftKey
) -> None:
    """``username`` signs in with its password and enrols ``key``, then signs out."""
    await client.sign_in(username, PASSWORD)
    status, _ = await _enrol(client, key, f"{username}'s key")
    assert status == 200
    await client.post("/logout")


async def test_keys_are_enrolled_by_name_and_one_signs_in_after_the_password(
    live_server: LiveServer, boss: FormClient
) -> None:
    """A local admin (second factor required) with neither factor is sent to enrol; a
    key is enough. The first key shows recovery codes, the second does not; a password
    alone then opens only the second step, which a key completes."""
    await boss.sign_in("boss", PASSWORD)
    users, _ = await boss.get("/admin/users", allow_redirects=False)
    assert users.headers["Location"] == "/account/second-factor"
    blue, spare = SoftKey(ORIGIN), SoftKey(ORIGIN)
    status, page = await _enrol(boss, blue, "blue key, safe 2")
    assert status == 200 and len(CODES_RE.findall(page)) == 10
    assert "Your security key is set up" in page
    second, _ = await boss.post(
        "/account/security-keys",
        {"name": "spare", "credential": spare.create(await _fresh_options(boss))},
    )
    assert (
        second.status == 303 and second.headers["Location"] == "/account/security-keys?added=spare"
    )
    users, _ = await boss.get("/admin/users", allow_redirects=False)
    assert users.status == 200
    _, listing = await boss.get("/account/security-keys")
    assert "blue key, safe 2" in listing and "spare" in listing
    await boss.post("/logout")

    await boss.sign_in("boss", PASSWORD)
    users, _ = await boss.get("/admin/users", allow_redirects=False)
    assert users.headers["Location"].startswith("/login/second-factor")
    _, step = await boss.get("/login/second-factor")
    assert "Use your security key" in step
    status, _ = await _second_step(boss, spare)
    assert status == 303
    users, _ = await boss.get("/admin/users", allow_redirects=False)
    assert users.status == 200
    assert _events(live_server, "user.second_factor_enrolled") == [
        {"kind": "security_key", "name": "blue key, safe 2", "recovery_codes": 10},
        {"kind": "security_key", "name": "spare"},
    ]
    assert _events(live_server, "login.second_factor") == [
        {"kind": "security_key", "name": "spare"}
    ]
    with live_server.db.reader() as session:
        assert (
            session.exec(select(SecurityKey).where(SecurityKey.name == "spare")).one().sign_count
            == 1
        )


async def _fresh_options(client: FormClient) -> dict[str, Any]:
    await client.get("/account/security-keys")
    return await _options(client, "/account/security-keys/options")


async def test_an_answer_to_another_challenge_is_refused(
    live_server: LiveServer, boss: FormClient
) -> None:
    """The key signs a challenge the box never gave this session (here: the one it gave
    for the enrolment, answered again as a sign-in)."""
    key = SoftKey(ORIGIN)
    await _signed_in_with_a_key(live_server, boss, "boss", key)
    await boss.sign_in("boss", PASSWORD)
    stale = key.get({"challenge": "bm90LXRoZS1ib3gncy1jaGFsbGVuZ2U", "rpId": "evr.test"})
    status, page = await _second_step(boss, key, answer=stale)
    assert status == 401 and "was not accepted" in page
    refused = _events(live_server, "login.second_factor_failed")
    assert len(refused) == 1 and "challenge" in refused[0]["reason"].lower()


async def test_another_accounts_key_is_refused(live_server: LiveServer, boss: FormClient) -> None:
    """deputy's key, answering boss's challenge properly: a real key, the wrong owner."""
    theirs = SoftKey(ORIGIN)
    deputy = FormClient(live_server.base_url)
    try:
        await _signed_in_with_a_key(live_server, deputy, "deputy", theirs)
    finally:
        await deputy.close()
    await _signed_in_with_a_key(live_server, boss, "boss", SoftKey(ORIGIN))
    await boss.sign_in("boss", PASSWORD)
    status, _ = await _second_step(boss, theirs)
    assert status == 401
    assert _events(live_server, "login.second_factor_failed")[0]["reason"] == "another_users_key"


async def test_a_replayed_or_cloned_assertion_is_refused_by_its_counter(
    live_server: LiveServer, boss: FormClient
) -> None:
    """An assertion used once is sent again (its challenge is spent), then a clone of the
    key answers the new challenge with a counter that has not grown."""
    key = SoftKey(ORIGIN)
    await _signed_in_with_a_key(live_server, boss, "boss", key)
    await boss.sign_in("boss", PASSWORD)
    await boss.get("/login/second-factor")
    used = key.get(await _options(boss, "/login/second-factor/key-options"))
    ok, _ = await boss.post("/login/second-factor/key", {"credential": used})
    assert ok.status == 303
    await boss.post("/logout")

    await boss.sign_in("boss", PASSWORD)
    status, _ = await _second_step(boss, key, answer=used)
    assert status == 401
    key.sign_count -= 1  # the clone's counter: the same as the answer the box accepted
    status, _ = await _second_step(boss, key)
    assert status == 401
    reasons = [e["reason"] for e in _events(live_server, "login.second_factor_failed")]
    assert "challenge" in reasons[0].lower() and "sign count" in reasons[1].lower(), reasons
    with live_server.db.reader() as session:
        assert session.exec(select(SecurityKey)).one().sign_count == 1


async def test_a_key_the_box_does_not_know_is_refused(
    live_server: LiveServer, boss: FormClient
) -> None:
    await _signed_in_with_a_key(live_server, boss, "boss", SoftKey(ORIGIN))
    await boss.sign_in("boss", PASSWORD)
    status, _ = await _second_step(boss, SoftKey(ORIGIN))
    assert status == 401
    assert _events(live_server, "login.second_factor_failed")[0]["reason"] == "unknown_key"


async def test_an_answer_made_for_another_site_is_not_enrolled(
    live_server: LiveServer, boss: FormClient
) -> None:
    """A key whose browser was on another origin (a phishing page relaying the box's
    challenge): the enrolment is refused and audited."""
    await boss.sign_in("boss", PASSWORD)
    status, page = await _enrol(boss, SoftKey("https://evr.test.example"), "phished")
    assert status == 400 and "was not accepted" in page
    refused = _events(live_server, "user.second_factor_refused")
    assert len(refused) == 1 and "origin" in refused[0]["reason"].lower()
    with live_server.db.reader() as session:
        assert session.exec(select(SecurityKey)).all() == []


async def test_removing_the_last_key_and_the_shell_reset_each_bring_back_enrolment(
    live_server: LiveServer, boss: FormClient, database_url: str, settings: Settings
) -> None:
    await boss.sign_in("boss", PASSWORD)
    assert (await _enrol(boss, SoftKey(ORIGIN), "first"))[0] == 200
    with live_server.db.reader() as session:
        first = session.exec(select(SecurityKey)).one()
    removed, _ = await boss.post(f"/account/security-keys/{first.id}/remove")
    assert removed.status == 303
    users, _ = await boss.get("/admin/users", allow_redirects=False)
    assert users.headers["Location"] == "/account/second-factor"
    with live_server.db.reader() as session:
        assert session.exec(select(RecoveryCode)).all() == []

    assert (await _enrol(boss, SoftKey(ORIGIN), "second"))[0] == 200
    ran = run_evr(
        {"EVR_DATABASE_URL": database_url, "EVR_DATA_DIR": str(settings.data_dir)},
        "user",
        "reset-factor",
        "boss",
    )
    assert ran.returncode == 0, ran.stderr
    ended, _ = await boss.get("/admin/users", allow_redirects=False)
    assert ended.headers["Location"].startswith("/login")
    with live_server.db.reader() as session:
        assert session.exec(select(SecurityKey)).all() == []
    assert _events(live_server, "user.second_factor_removed") == [
        {"kind": "security_key", "name": "first"}
    ]
    reset = _events(live_server, "user.second_factor_reset")
    assert reset == [{"admin": True, "authenticator_app": False, "security_keys": ["second"]}]
