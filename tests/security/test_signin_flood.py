"""Sign-in floods (issue 16, item 1): an address that keeps failing is answered 429 from
memory, before any password check; every failure reads the same whether the username
exists, the password is wrong or the account is locked; a lock cannot be made long."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlmodel import select

from appliance.config import Settings
from appliance.models import AuditEvent, Role
from appliance.services import audit
from appliance.services.identity import accounts, passwords, signing_in
from appliance.services.identity.throttle import Throttle
from appliance.web import keys
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_user

pytestmark = pytest.mark.sqlite_only(
    reason="throttles and answers are in memory and in the handler; the sign-in's database "
    "moves are the ones tests/integration/test_accounts.py runs on both engines"
)

FAILURES_ALLOWED = 4


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"login_failures_per_source": FAILURES_ALLOWED, "login_max_failures": 2}
    )


def _actions(server: LiveServer) -> list[str]:
    with server.db.reader() as session:
        return [e.action for e in session.exec(select(AuditEvent).order_by(AuditEvent.seq))]


async def test_a_flooding_address_is_refused_before_any_password_check(
    live_server: LiveServer, caller: FormClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sixteen sign-ins at once for usernames nobody has: the first few are checked (401),
    the rest are answered 429 at once, and the box still serves a signed-in page."""
    with live_server.db.session() as session:
        add_user(session, "pc1", Role.HANDLER)
    await caller.get("/login")
    checks = []
    real_check = signing_in.check_password

    def counted_check(creds: signing_in.Credentials, password: str) -> bool:
        checks.append(creds.username)
        return real_check(creds, password)

    monkeypatch.setattr(signing_in, "check_password", counted_check)

    async def attempt(n: int) -> int:
        response, _ = await caller.post("/login", {"username": f"ghost{n}", "password": "x"})
        return response.status

    for n in range(FAILURES_ALLOWED):
        assert await attempt(n) == 401
    statuses = await asyncio.gather(*(attempt(n) for n in range(16)))
    assert statuses == [429] * 16
    assert len(checks) == FAILURES_ALLOWED, "a throttled sign-in costs no password check"
    response, body = await caller.post("/login", {"username": "pc1", "password": PASSWORD})
    assert response.status == 429 and int(response.headers["Retry-After"]) > 0
    assert "from this address" in body

    staff = FormClient(live_server.base_url)
    try:
        # Staff elsewhere on the network are not this address: give them their own.
        live_server.app[keys.GUARDS].sign_in = Throttle(FAILURES_ALLOWED)
        assert (await staff.sign_in("pc1", PASSWORD)).status == 303
        response, _ = await staff.get("/incidents")
        assert response.status == 200
    finally:
        await staff.close()
    actions = _actions(live_server)
    assert actions.count("login.failed") == 1, "unknown usernames: one row a minute"
    assert actions.count("login.throttled") == 1


async def test_unknown_wrong_and_locked_all_get_the_same_answer(
    live_server: LiveServer, caller: FormClient
) -> None:
    """Usernames cannot be found by trying: a locked account, even with its right
    password, answers exactly as a username nobody has does."""
    with live_server.db.session() as session:
        add_user(session, "pc1", Role.HANDLER)
    await caller.get("/login")
    answers = set()
    for username, password in [
        ("nobody", "x"),
        ("pc1", "wrong"),
        ("pc1", "wrong"),  # the second failure locks pc1
        ("pc1", PASSWORD),  # locked: the right password changes nothing
    ]:
        response, body = await caller.post("/login", {"username": username, "password": password})
        error = body.split('role="alert">', 1)[1].split("<", 1)[0]
        answers.add((response.status, error))
    assert answers == {(401, "Wrong username or password.")}
    assert caller.cookie(keys.SESSION_COOKIE) is None
    assert "user.locked" in _actions(live_server)


def test_a_stranger_cannot_lock_an_account_for_long() -> None:
    """However many locks a stranger provokes, each lasts at most the setting (15 min by
    default); a huge lock count does not overflow the doubling."""
    policy = signing_in.LockoutPolicy(max_failures=5, lockout_seconds=300, max_lockout_seconds=900)
    assert policy.lock_length(1) == timedelta(seconds=300)
    assert policy.lock_length(2) == timedelta(seconds=600)
    assert policy.lock_length(3) == policy.lock_length(10**6) == timedelta(seconds=900)
    assert Settings.model_fields["login_lockout_max_seconds"].default == 900


def test_unknown_usernames_are_tallied_not_chained_one_by_one(live_server: LiveServer) -> None:
    """A thousand-strong list of guessed usernames costs one audit row a minute per
    address, and a `refusals.repeated` row counting the rest; the chain still holds."""
    tally = audit.RefusalTally()
    with live_server.db.session() as session:
        for n in range(25):
            creds = signing_in.credentials(session, f"guess{n}")
            signing_in.record_sign_in(
                session, creds, False, None, "198.51.100.7", signing_in.LockoutPolicy(), tally
            )
        tally.flush(session, everything=True)
    with live_server.db.reader() as session:
        rows = session.exec(select(AuditEvent).where(AuditEvent.source == "198.51.100.7")).all()
        assert [r.action for r in rows] == ["login.failed", audit.REPEATED]
        assert rows[1].detail["count"] == 24 and rows[1].detail["action"] == "login.failed"
        assert audit.verify(session).ok


async def test_a_hash_of_older_parameters_is_renewed_at_sign_in_outside_any_session(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried: an account whose hash was made with weaker Argon2 parameters (a box upgraded
    since) signs in through the web. The hash is renewed with today's parameters, and
    neither the check nor the new hash ran while a database session was open in that
    thread (on SQLite a writer would hold the box's one write lock meanwhile)."""
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    with live_server.db.session() as session:
        user = add_user(session, "pc7", Role.HANDLER)
        user.password_hash = old.hash(PASSWORD)
        session.add(user)
    in_session: list[bool] = []  # at each Argon2 run: was a session open in its thread?

    def watched(real: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            in_session.append(bool(getattr(live_server.db._local, "open", False)))
            return real(*args)

        return run

    monkeypatch.setattr(signing_in, "verify_password", watched(signing_in.verify_password))
    monkeypatch.setattr(signing_in, "hash_password", watched(signing_in.hash_password))
    staff = FormClient(live_server.base_url)
    try:
        assert (await staff.sign_in("pc7", PASSWORD)).status == 303
    finally:
        await staff.close()
    with live_server.db.reader() as session:
        renewed = accounts.require(session, "pc7").password_hash
    assert in_session == [False, False]  # the check, then the new hash
    assert renewed is not None and renewed.startswith("$argon2id$")
    assert not passwords.needs_rehash(renewed) and passwords.verify_password(renewed, PASSWORD)
