"""Users, roles and password changes: all audited (signing in is in :mod:`signing_in`).

A privileged role (``PRIVILEGED``) asked for on the web is not given at once: it waits as
a ``RoleGrant`` until a second admin approves it, so no one admin can widen anyone's
reach alone (not their own, not a new account's, not an accomplice's). The box's shell
(``evr user add``, ``evr user set-roles``) gives roles directly: whoever holds it holds
the database and the keys already, and it is the way in when there is one admin.
A request lapses after ``GRANT_LIFETIME``: an approval weeks later would be given on a
need nobody re-checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlmodel import Session, col, delete, select

from appliance.config import Settings
from appliance.models import GrantState, Role, RoleGrant, User, UserRole, utcnow
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.identity import web_sessions
from appliance.services.identity.passwords import (
    generate_password,
    hash_password,
    verify_password,
)

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
GRANT_LIFETIME = timedelta(days=7)

PRIVILEGED = frozenset(
    {
        Role.ADMIN,
        Role.EVIDENCE_OFFICER,
        Role.SUPERVISOR,
        Role.INFORMATION_MANAGER,
        Role.AUDITOR,
        Role.EVALUATION_LEAD,
    }
)
"""Roles a web admin cannot give alone: each reaches records beyond the incidents its
holder works, out of everyone's sight. admin: every account, so every role;
evidence_officer (exports) and supervisor: every incident's evidence; information_manager:
every person's records (subject access) and the audit search; auditor: the audit trail,
which says who did what to whom; evaluation_lead: every caller's survey comments. A
handler or an RVR officer reaches an incident by taking it or being given it, on the
board in everyone's view, so those two are given at once."""


class AccountError(ValueError):
    """A request about an account that cannot be done; the message is for the user."""


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 12

    @classmethod
    def from_settings(cls, settings: Settings) -> PasswordPolicy:
        return cls(min_length=settings.password_min_length)


@dataclass
class UserView:
    user: User
    roles: set[Role] = field(default_factory=set)
    pending: set[Role] = field(default_factory=set)


def parse_roles(names: Iterable[str]) -> set[Role]:
    roles = set()
    for name in names:
        try:
            roles.add(Role(name.strip()))
        except ValueError:
            allowed = ", ".join(r.value for r in Role)
            raise AccountError(f"unknown role {name!r}: choose from {allowed}") from None
    return roles


def get_by_username(session: Session, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username.strip().lower())).first()


def require(session: Session, username: str) -> User:
    user = get_by_username(session, username)
    if user is None:
        raise AccountError(f"no user named {username!r}")
    return user


def roles_of(session: Session, user_id: int) -> set[Role]:
    rows = session.exec(select(UserRole.role).where(UserRole.user_id == user_id)).all()
    return {Role(r) for r in rows}


def list_users(session: Session) -> list[UserView]:
    users = session.exec(select(User).order_by(col(User.username))).all()
    roles: dict[int, set[Role]] = {}
    for link in session.exec(select(UserRole)).all():
        roles.setdefault(link.user_id, set()).add(Role(link.role))
    pending: dict[int, set[Role]] = {}
    for grant in _pending(session):
        pending.setdefault(grant.user_id, set()).add(Role(grant.role))
    return [UserView(u, roles.get(u.id or 0, set()), pending.get(u.id or 0, set())) for u in users]


def check_password_policy(password: str, username: str, policy: PasswordPolicy) -> None:
    if len(password) < policy.min_length:
        raise AccountError(f"the password must be at least {policy.min_length} characters")
    if username and username.lower() in password.lower():
        raise AccountError("the password must not contain the username")
    if len(set(password)) < 4:
        raise AccountError("the password is too simple")


@dataclass(frozen=True)
class NewPassword:
    """A password and its Argon2id hash, made before the transaction that stores it
    opens. A hash is a quarter second of CPU or more, and on SQLite a writer holds the
    box's one write lock while its transaction is open: every other write, a call's
    signalling included, would wait for the hash."""

    plain: str
    hashed: str
    chosen: bool  # by a person (the password policy applies), not generated

    @classmethod
    def of(cls, plain: str | None = None) -> NewPassword:
        """``plain`` as chosen, or a generated one-time password when None."""
        if plain is None:
            plain = generate_password()
            return cls(plain, hash_password(plain), chosen=False)
        return cls(plain, hash_password(plain), chosen=True)


@dataclass(frozen=True)
class PasswordChange:
    """A change of one's own password as checked with no transaction open: whether the
    current password matched the hash it was checked against, and the new one hashed
    (``prepare_password_change``); ``change_password`` then only records it."""

    checked_against: str | None
    current_matches: bool
    new: NewPassword | None
    refusal: str | None = None


def prepare_password_change(
    user: User, current: str, new: str, policy: PasswordPolicy
) -> PasswordChange:
    """The slow part of a password change (two Argon2 runs), outside any transaction."""
    stored = user.password_hash
    if not verify_password(stored, current):
        return PasswordChange(stored, current_matches=False, new=None)
    if new == current:
        refusal = "the new password must differ from the current one"
        return PasswordChange(stored, current_matches=True, new=None, refusal=refusal)
    try:
        check_password_policy(new, user.username, policy)
    except AccountError as exc:
        return PasswordChange(stored, current_matches=True, new=None, refusal=str(exc))
    return PasswordChange(stored, current_matches=True, new=NewPassword.of(new))


def create_user(
    session: Session,
    actor: Actor,
    username: str,
    display_name: str,
    roles: Iterable[Role],
    password: str | NewPassword | None = None,
    policy: PasswordPolicy | None = None,
    *,
    hold_privileged: bool = False,
    break_glass: bool = False,
) -> tuple[User, str]:
    """Create an account that must change its password at first sign-in.

    Returns the user and the one-time password (generated unless given). A caller with
    a transaction others wait on passes a ``NewPassword`` made before it opened. With
    ``hold_privileged`` (the web), privileged roles are not given but asked for: they
    wait for a second admin, and the account may start with no role at all.
    ``break_glass`` (the shell only) lets it sign in with its password under SSO.
    """
    username = username.strip().lower()
    if not USERNAME_RE.match(username):
        raise AccountError(
            "a username is 2–64 characters: lower-case letters, digits, '.', '_' or '-'"
        )
    display_name = display_name.strip()
    if not display_name or len(display_name) > 120:
        raise AccountError("a display name of 1–120 characters is needed")
    if get_by_username(session, username) is not None:
        raise AccountError(f"a user named {username!r} already exists")
    role_set = set(roles)
    if not role_set:
        raise AccountError("give the user at least one role")
    if isinstance(password, str):
        check_password_policy(password, username, policy or PasswordPolicy())
    elif password is not None and password.chosen:
        check_password_policy(password.plain, username, policy or PasswordPolicy())
    made = password if isinstance(password, NewPassword) else NewPassword.of(password)
    held = role_set & PRIVILEGED if hold_privileged else set()
    given = role_set - held
    user = User(
        username=username,
        display_name=display_name,
        password_hash=made.hashed,
        break_glass=break_glass,
    )
    session.add(user)
    session.flush()
    assert user.id is not None
    for role in sorted(given):
        session.add(UserRole(user_id=user.id, role=role.value))
    detail: dict[str, object] = {"roles": sorted(r.value for r in given)}
    if break_glass:
        detail["break_glass"] = True
    if held:
        detail["pending"] = sorted(r.value for r in held)
    audit.record(
        session, actor, "user.created", object_type="user", object_id=username, detail=detail
    )
    for role in sorted(held):
        _request_grant(session, actor, user, role)
    return user, made.plain


def _active_admins(session: Session) -> set[int]:
    rows = session.exec(
        select(User.id)
        .join(UserRole, col(UserRole.user_id) == col(User.id))
        .where(UserRole.role == Role.ADMIN.value, col(User.disabled).is_(False))
    ).all()
    return {r for r in rows if r is not None}


def _guard_last_admin(session: Session, user: User, losing_admin: bool) -> None:
    if losing_admin and _active_admins(session) == {user.id}:
        raise AccountError("this is the last active admin: make another admin first")


def set_roles(
    session: Session,
    actor: Actor,
    username: str,
    roles: Iterable[Role],
    *,
    hold_privileged: bool = False,
) -> set[Role]:
    """Replace an account's roles. Never one's own: an admin who could grant themselves
    evidence_officer could export evidence with nobody else agreeing, so a second admin
    (or the box's console, ``evr user set-roles``) must make the change.

    With ``hold_privileged`` (the web), removals and ordinary roles apply now, a
    privileged role the account lacks is asked for instead (a pending grant a second
    admin approves), and a pending grant whose role is no longer asked for is withdrawn.
    Returns the roles left waiting for approval.
    """
    user = require(session, username)
    assert user.id is not None
    if actor.name == user.username:
        raise AccountError("you cannot change your own roles: another admin must")
    new = set(roles)
    if not new:
        raise AccountError("give the user at least one role")
    old = roles_of(session, user.id)
    held = (new - old) & PRIVILEGED if hold_privileged else set()
    waiting = {Role(grant.role): grant for grant in _pending(session, user.id)}
    if hold_privileged:
        for role, grant in waiting.items():
            if role not in new:
                _decide(session, actor, user, grant, GrantState.WITHDRAWN)
    given = new - held
    if given != old:
        _guard_last_admin(session, user, Role.ADMIN in old and Role.ADMIN not in given)
        session.exec(delete(UserRole).where(col(UserRole.user_id) == user.id))
        for role in sorted(given):
            session.add(UserRole(user_id=user.id, role=role.value))
        audit.record(
            session,
            actor,
            "user.roles_changed",
            object_type="user",
            object_id=user.username,
            detail={"from": sorted(r.value for r in old), "to": sorted(r.value for r in given)},
        )
        for role, grant in waiting.items():
            if role in given:  # given directly (the shell): nothing left to approve
                _decide(session, actor, user, grant, GrantState.WITHDRAWN)
    for role in sorted(held - waiting.keys()):
        _request_grant(session, actor, user, role)
    return held


def _pending(session: Session, user_id: int | None = None) -> list[RoleGrant]:
    query = select(RoleGrant).where(
        RoleGrant.state == GrantState.PENDING.value,
        col(RoleGrant.requested_at) > utcnow() - GRANT_LIFETIME,
    )
    if user_id is not None:
        query = query.where(RoleGrant.user_id == user_id)
    return list(session.exec(query.order_by(col(RoleGrant.id))).all())


def count_pending_grants(session: Session) -> int:
    """Role grants waiting for a second admin (the admin's home tile)."""
    return len(_pending(session))


def _request_grant(session: Session, actor: Actor, user: User, role: Role) -> RoleGrant:
    assert user.id is not None
    grant = RoleGrant(user_id=user.id, role=role.value, requested_by=actor.name)
    session.add(grant)
    session.flush()
    audit.record(
        session,
        actor,
        "user.role_grant_requested",
        object_type="user",
        object_id=user.username,
        detail={"grant": grant.id, "role": role.value},
    )
    return grant


def _decide(
    session: Session, actor: Actor, user: User, grant: RoleGrant, state: GrantState
) -> None:
    grant.state = state.value
    grant.decided_by = actor.name
    grant.decided_at = utcnow()
    session.add(grant)
    audit.record(
        session,
        actor,
        f"user.role_grant_{state.value}",
        object_type="user",
        object_id=user.username,
        detail={"grant": grant.id, "role": grant.role, "requested_by": grant.requested_by},
    )


@dataclass(frozen=True)
class PendingGrant:
    grant: RoleGrant
    username: str


def pending_grants(session: Session) -> list[PendingGrant]:
    """Every grant waiting for a second admin, oldest first, with whom it is for."""
    grants = _pending(session)
    names = {
        user.id: user.username
        for user in session.exec(
            select(User).where(col(User.id).in_(sorted({g.user_id for g in grants})))
        ).all()
    }
    return [PendingGrant(g, names.get(g.user_id, "?")) for g in grants]


def decide_grant(session: Session, actor: Actor, grant_id: int, approve: bool) -> RoleGrant:
    """Approve or refuse a pending grant. Approval is a second admin's: never the one who
    asked, never the account that would hold the role, and only an active admin's.
    Refusing narrows reach, so any admin may (the one who asked withdraws that way)."""
    grant = session.get(RoleGrant, grant_id)
    if grant is None or grant.state != GrantState.PENDING.value:
        raise AccountError("that grant is not waiting for a decision")
    user = session.get(User, grant.user_id)
    assert user is not None and user.id is not None
    if not approve:
        _decide(session, actor, user, grant, GrantState.REFUSED)
        return grant
    if grant.requested_at <= utcnow() - GRANT_LIFETIME:
        raise AccountError(
            f"that request is more than {GRANT_LIFETIME.days} days old and has lapsed: "
            "ask for the role again"
        )
    if actor.name == grant.requested_by:
        raise AccountError("you asked for this role: another admin must approve it")
    if actor.name == user.username:
        raise AccountError("you cannot approve a role for yourself: another admin must")
    approver = get_by_username(session, actor.name)
    if (
        approver is None
        or approver.disabled
        or Role.ADMIN not in roles_of(session, approver.id or 0)
    ):
        raise AccountError("only an active admin approves a role")
    role = Role(grant.role)
    if role not in roles_of(session, user.id):
        session.add(UserRole(user_id=user.id, role=role.value))
    _decide(session, actor, user, grant, GrantState.APPROVED)
    return grant


def set_disabled(session: Session, actor: Actor, username: str, disabled: bool) -> User:
    user = require(session, username)
    assert user.id is not None
    if user.disabled == disabled:
        return user
    if disabled:
        _guard_last_admin(session, user, Role.ADMIN in roles_of(session, user.id))
    user.disabled = disabled
    session.add(user)
    if disabled:
        web_sessions.end_all_for(session, user.id)
    audit.record(
        session,
        actor,
        "user.disabled" if disabled else "user.enabled",
        object_type="user",
        object_id=user.username,
    )
    return user


def set_break_glass(session: Session, actor: Actor, username: str, on: bool) -> User:
    """Mark (or unmark) a box account as break-glass: the shell's decision alone, since
    under single sign-on it is what lets a password in without the force's MFA. Taking
    the mark away ends the account's sessions, which SSO would no longer let it start."""
    user = require(session, username)
    assert user.id is not None
    if user.oidc_subject is not None:
        raise AccountError(
            f"{username} signs in through the force's identity provider: break-glass is "
            "for the box's own accounts"
        )
    if user.break_glass == on:
        return user
    user.break_glass = on
    session.add(user)
    if not on:
        web_sessions.end_all_for(session, user.id)
    audit.record(
        session,
        actor,
        "user.break_glass_set" if on else "user.break_glass_cleared",
        object_type="user",
        object_id=user.username,
    )
    return user


def reset_password(
    session: Session,
    actor: Actor,
    username: str,
    *,
    privileged_ok: bool = False,
    password: NewPassword | None = None,
) -> tuple[User, str]:
    """Set a new one-time password, lift any lock and sign the user out everywhere.

    An admin who resets a privileged account's password learns it, and so could sign in
    as a second admin or an evidence officer: the two-admin rule would be one admin
    again. So such a reset is the box shell's (``privileged_ok``, break-glass, as for
    roles), never the web's."""
    user = require(session, username)
    assert user.id is not None
    if user.oidc_subject is not None:
        raise AccountError(
            f"{username} signs in through the force's identity provider: a password here "
            "would be a way in without the force's sign-in and its second factor"
        )
    if not privileged_ok and roles_of(session, user.id) & PRIVILEGED:
        raise AccountError(
            f"{username} holds a privileged role, so their password is reset on the box "
            "(evr user reset-password), not here"
        )
    made = password or NewPassword.of()
    user.password_hash = made.hashed
    user.must_change_password = True
    user.failed_logins = 0
    user.lockouts = 0
    user.locked_until = None
    session.add(user)
    web_sessions.end_all_for(session, user.id)
    audit.record(session, actor, "user.password_reset", object_type="user", object_id=user.username)
    return user, made.plain


def change_password(
    session: Session,
    user: User,
    change: PasswordChange,
    source: str,
    keep_session_id: int | None = None,
) -> None:
    """Record a change of one's own password (``prepare_password_change`` checked it);
    other sessions of the user end.

    A wrong current password is audited before ``AccountError`` is raised: the caller
    commits its session on that refusal to keep the event. A password changed by anyone
    between the check and this transaction is refused, to be tried again.
    """
    actor = Actor(user.username, source)
    if user.password_hash != change.checked_against:
        raise AccountError("the password changed while this one was being checked: try again")
    if not change.current_matches:
        audit.record(
            session,
            actor,
            "user.password_change_failed",
            object_type="user",
            object_id=user.username,
            detail={"reason": "wrong_current_password"},
        )
        raise AccountError("the current password is wrong")
    if change.new is None:
        raise AccountError(change.refusal or "the new password was refused")
    user.password_hash = change.new.hashed
    user.must_change_password = False
    user.password_changed_at = utcnow()
    session.add(user)
    assert user.id is not None
    web_sessions.end_all_for(session, user.id, except_id=keep_session_id)
    audit.record(
        session, actor, "user.password_changed", object_type="user", object_id=user.username
    )


def ensure_first_admin(session: Session) -> str | None:
    """On an empty box, create ``admin`` and return its one-time password (else None).

    It is break-glass: the way in when the force's provider cannot be reached."""
    if session.exec(select(User.id).limit(1)).first() is not None:
        return None
    _, password = create_user(
        session,
        Actor(audit.SYSTEM, "startup"),
        "admin",
        "Administrator",
        {Role.ADMIN},
        break_glass=True,
    )
    return password
