"""Accounts: creation, roles, lockout that grows, resets, and guards on the last admin."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from argon2 import PasswordHasher, profiles
from sqlmodel import select

from appliance.db import Database
from appliance.models import AuditEvent, Role, User, WebSession, utcnow
from appliance.services.audit import Actor
from appliance.services.identity import accounts, passwords, signing_in, web_sessions
from appliance.services.identity.accounts import AccountError
from appliance.services.identity.signing_in import LockoutPolicy, SignInStatus
from tests.support.staff import PASSWORD, add_user

ADMIN = Actor("root-admin", "cli")
POLICY = LockoutPolicy(max_failures=3, lockout_seconds=60)


def _actions(db: Database) -> list[str]:
    with db.session() as session:
        return [e.action for e in session.exec(select(AuditEvent).order_by(AuditEvent.seq))]


def _create(db: Database, username: str = "pc1234", *roles: Role) -> str:
    with db.session() as session:
        _, password = accounts.create_user(
            session, ADMIN, username, "Pat Constable", roles or {Role.HANDLER}
        )
    return password


def test_created_user_must_change_password_and_creation_is_audited(db: Database) -> None:
    password = _create(db, "PC1234", Role.HANDLER, Role.SUPERVISOR)
    with db.session() as session:
        user = accounts.require(session, "pc1234")
        assert user.must_change_password
        assert user.password_hash.startswith("$argon2id$")
        assert password not in user.password_hash
        assert accounts.roles_of(session, user.id) == {Role.HANDLER, Role.SUPERVISOR}
    assert _actions(db) == ["user.created"]


@pytest.mark.parametrize(
    ("username", "message"),
    [("a", "username"), ("has space", "username"), ("pc1234", "already exists")],
)
def test_bad_usernames_are_refused(db: Database, username: str, message: str) -> None:
    _create(db)
    with pytest.raises(AccountError, match=message), db.session() as session:
        accounts.create_user(session, ADMIN, username, "X", {Role.HANDLER})


def test_unknown_role_is_refused() -> None:
    with pytest.raises(AccountError, match="unknown role 'constable'"):
        accounts.parse_roles(["handler", "constable"])


def test_wrong_passwords_lock_the_account_and_each_lock_is_longer(db: Database) -> None:
    password = _create(db)
    with db.session() as session:
        for _ in range(2):
            assert signing_in.sign_in(session, "pc1234", "wrong", "1.2.3.4", POLICY).status is (
                SignInStatus.WRONG
            )
        third = signing_in.sign_in(session, "pc1234", "wrong", "1.2.3.4", POLICY)
        assert third.status is SignInStatus.LOCKED
        first_lock = third.locked_until - utcnow()
        assert timedelta(seconds=55) < first_lock <= timedelta(seconds=60)
        # The right password does not open a locked account.
        assert signing_in.sign_in(session, "pc1234", password, "1.2.3.4", POLICY).status is (
            SignInStatus.LOCKED
        )
        # Let the lock run out; three more failures lock it for twice as long.
        user = accounts.require(session, "pc1234")
        user.locked_until = utcnow() - timedelta(seconds=1)
        session.add(user)
        for _ in range(3):
            result = signing_in.sign_in(session, "pc1234", "wrong", "1.2.3.4", POLICY)
        assert result.status is SignInStatus.LOCKED
        assert result.locked_until - utcnow() > timedelta(seconds=115)
    actions = _actions(db)
    assert actions.count("login.failed") == 6
    assert actions.count("user.locked") == 2
    assert "login.refused" in actions


def test_good_sign_in_clears_failures(db: Database) -> None:
    password = _create(db)
    with db.session() as session:
        signing_in.sign_in(session, "pc1234", "wrong", "", POLICY)
        result = signing_in.sign_in(session, "pc1234", password, "", POLICY)
        assert result.status is SignInStatus.OK
        assert result.user.failed_logins == 0
        assert result.user.last_login_at is not None


def test_unknown_and_disabled_users_get_the_same_answer_as_a_wrong_password(
    db: Database,
) -> None:
    password = _create(db)
    _create(db, "boss", Role.ADMIN)
    with db.session() as session:
        accounts.set_disabled(session, ADMIN, "pc1234", True)
        assert signing_in.sign_in(session, "nobody", "x", "", POLICY).status is SignInStatus.WRONG
        assert signing_in.sign_in(session, "pc1234", password, "", POLICY).status is (
            SignInStatus.WRONG
        )
    assert _actions(db).count("login.failed") == 2


def test_reset_password_unlocks_and_ends_sessions(db: Database) -> None:
    password = _create(db)
    with db.session() as session:
        user = signing_in.sign_in(session, "pc1234", password, "", POLICY).user
        token, _ = web_sessions.start(session, user, "")
        for _ in range(3):
            signing_in.sign_in(session, "pc1234", "wrong", "", POLICY)
        _, new_password = accounts.reset_password(session, ADMIN, "pc1234")
        assert new_password != password
        assert web_sessions.resolve(session, token, web_sessions.SessionPolicy()) is None
        assert signing_in.sign_in(session, "pc1234", new_password, "", POLICY).status is (
            SignInStatus.OK
        )
        assert accounts.require(session, "pc1234").must_change_password


def test_the_last_admin_cannot_be_disabled_or_demoted(db: Database) -> None:
    _create(db, "boss", Role.ADMIN)
    with db.session() as session:
        with pytest.raises(AccountError, match="last active admin"):
            accounts.set_disabled(session, ADMIN, "boss", True)
        with pytest.raises(AccountError, match="last active admin"):
            accounts.set_roles(session, ADMIN, "boss", {Role.HANDLER})
    _create(db, "deputy", Role.ADMIN)
    with db.session() as session:
        accounts.set_roles(session, ADMIN, "boss", {Role.HANDLER})
        assert accounts.roles_of(session, accounts.require(session, "boss").id) == {Role.HANDLER}
    assert _actions(db)[-1] == "user.roles_changed"


def test_password_change_checks_policy_and_ends_other_sessions(db: Database) -> None:
    password = _create(db)
    policy = accounts.PasswordPolicy(min_length=12)
    with db.session() as session:
        user = signing_in.sign_in(session, "pc1234", password, "", POLICY).user
        keep_token, keep = web_sessions.start(session, user, "")
        other_token, _ = web_sessions.start(session, user, "")

        def change(current: str, new: str, keep_session_id: int | None = None) -> None:
            checked = accounts.prepare_password_change(user, current, new, policy)
            accounts.change_password(session, user, checked, "", keep_session_id)

        with pytest.raises(AccountError, match="current password is wrong"):
            change("nope", "x" * 20)
        with pytest.raises(AccountError, match="at least 12"):
            change(password, "short")
        with pytest.raises(AccountError, match="username"):
            change(password, "my-pc1234-pass")
        with pytest.raises(AccountError, match="must differ"):
            change(password, password)
        change(password, "correct horse battery", keep_session_id=keep.id)
        assert not user.must_change_password
        session_policy = web_sessions.SessionPolicy()
        assert web_sessions.resolve(session, keep_token, session_policy) is not None
        assert web_sessions.resolve(session, other_token, session_policy) is None


def test_a_password_changed_between_its_check_and_its_record_is_refused(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried: two changes of one account checked against the same stored hash (two tabs,
    or an admin's reset in between); the second to be recorded is refused, not applied
    over the first, and no Argon2 run happens while a session is open."""
    password = _create(db)
    argon2_runs: list[bool] = []

    def watched(real: Callable[..., object]) -> Callable[..., object]:
        def run(*args: object) -> object:
            argon2_runs.append(bool(getattr(db._local, "open", False)))
            return real(*args)

        return run

    monkeypatch.setattr(accounts, "hash_password", watched(accounts.hash_password))
    monkeypatch.setattr(accounts, "verify_password", watched(accounts.verify_password))
    policy = accounts.PasswordPolicy(min_length=12)
    with db.reader() as session:
        user = accounts.require(session, "pc1234")
    first = accounts.prepare_password_change(user, password, "first new passphrase", policy)
    second = accounts.prepare_password_change(user, password, "second new passphrase", policy)
    with db.session() as session:
        accounts.change_password(session, accounts.require(session, "pc1234"), first, "")
    with db.session() as session, pytest.raises(AccountError, match="try again"):
        accounts.change_password(session, accounts.require(session, "pc1234"), second, "")
    with db.reader() as session:
        stored = accounts.require(session, "pc1234").password_hash
    assert first.new is not None and stored == first.new.hashed
    assert argon2_runs == [False] * 4  # two checks and two hashes, none in a session


def test_sessions_end_when_idle_or_too_old(db: Database) -> None:
    password = _create(db)
    policy = web_sessions.SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(hours=12))
    with db.session() as session:
        user = signing_in.sign_in(session, "pc1234", password, "", POLICY).user
        idle_token, idle = web_sessions.start(session, user, "")
        old_token, old = web_sessions.start(session, user, "")
        idle.last_seen_at = utcnow() - timedelta(minutes=31)
        old.created_at = utcnow() - timedelta(hours=13)
        session.add_all([idle, old])
        session.flush()
        assert web_sessions.resolve(session, idle_token, policy) is None
        assert web_sessions.resolve(session, old_token, policy) is None
        assert web_sessions.resolve(session, "tampered" + idle_token, policy) is None
        ended = session.exec(select(WebSession).where(WebSession.ended_at.is_not(None))).all()
        assert len(ended) == 2


def test_first_admin_is_made_once(db: Database) -> None:
    with db.session() as session:
        password = accounts.ensure_first_admin(session)
        assert password and len(password) >= 20
        assert accounts.ensure_first_admin(session) is None
        admin = session.exec(select(User)).one()
        assert admin.username == "admin" and admin.must_change_password
        assert accounts.roles_of(session, admin.id) == {Role.ADMIN}


@pytest.mark.sqlite_only(reason="hashing happens in Python; the engine only stores a string")
@pytest.mark.usefixtures("real_password_hashing")
def test_passwords_are_hashed_with_the_rfc_9106_profile_and_weaker_hashes_upgraded(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hash made with weaker parameters (an older release, or this suite's quick
    hasher) is replaced by one of the product's profile at the next good sign-in."""
    assert passwords.PROFILE == profiles.RFC_9106_LOW_MEMORY
    made = passwords.hash_password("a long enough passphrase")
    assert made.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert passwords.verify_password(made, "a long enough passphrase")
    assert not passwords.verify_password(made, "a long enough passphrasf")

    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    with db.session() as session:
        add_user(session, "pc77", Role.HANDLER)
        user = accounts.require(session, "pc77")
        user.password_hash = weak.hash(PASSWORD)
        session.add(user)
    with db.session() as session:
        result = signing_in.sign_in(session, "pc77", PASSWORD, "test", POLICY)
        assert result.status is SignInStatus.OK
    with db.session() as session:
        upgraded = accounts.require(session, "pc77").password_hash
    assert upgraded.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert passwords.verify_password(upgraded, PASSWORD)
