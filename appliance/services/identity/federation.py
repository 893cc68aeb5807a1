"""Sign-in through the force's identity provider: what a verified identity may do here.

The provider proves who someone is (``appliance/oidc.py`` checks its token); this module
decides what follows, in one transaction, and records it:

- **Accounts are keyed by (issuer, subject)**, the provider's own stable id, never by an
  email or a username, which are reassigned and can be edited by the user at some
  providers. The first sign-in makes the account (just in time); a local account whose
  username happens to match is never taken over: the new one gets a suffix.
- **Roles come only from ``oidc_role_map``** (group id or app-role value → roles),
  recomputed at every sign-in. No mapped role: refused, and whatever the account held is
  taken away and its sessions cut. Fewer roles than before: the account's other sessions
  are cut, so a removed right does not live on in an open tab. The map is the control for
  privileged roles: the force's group membership is its own approval, and the map is set
  on the box's configuration, never on the web (docs/security.md).
- **MFA, when the force says so**: the token must carry one of ``oidc_required_amr`` or
  ``oidc_required_acr``. The provider does the second factor; the box checks it happened.
- **Every event names the provider's subject**: ``iss`` and ``sub`` in the detail of the
  account's creation, each sign-in and refusal, and each role change the provider causes;
  the account row binds its username to that pair for every other event.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum

from sqlmodel import Session, col, delete, select

from appliance.config import Settings
from appliance.models import Role, User, UserRole, utcnow
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.identity import web_sessions
from appliance.services.identity.accounts import USERNAME_RE, get_by_username, roles_of
from appliance.services.identity.passwords import unusable_hash


class FederatedStatus(StrEnum):
    OK = "ok"
    NO_ROLE = "no_role"
    NO_MFA = "no_mfa"
    DISABLED = "disabled"


REFUSALS = {
    FederatedStatus.NO_ROLE: "Your account at the force is not in any group that gives access "
    "to this box. Ask your line manager or force IT to add you to the right group.",
    FederatedStatus.NO_MFA: "Your sign-in did not use a second factor, which this box requires. "
    "Sign in again with your authenticator or security key.",
    FederatedStatus.DISABLED: "Your account on this box has been disabled by its administrator.",
}


@dataclass(frozen=True)
class Claims:
    """What the service needs of a verified ID token (appliance.oidc.Identity has it)."""

    issuer: str
    subject: str
    name: str
    username_hint: str
    groups: tuple[str, ...]
    amr: tuple[str, ...] = ()
    acr: str | None = None


@dataclass(frozen=True)
class Policy:
    role_map: dict[str, frozenset[Role]]
    required_amr: frozenset[str] = frozenset()
    required_acr: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            role_map={
                group: frozenset(Role(r) for r in roles)
                for group, roles in settings.oidc_role_map.items()
            },
            required_amr=frozenset(settings.oidc_required_amr),
            required_acr=frozenset(settings.oidc_required_acr),
        )

    def roles_for(self, groups: tuple[str, ...]) -> set[Role]:
        return {role for group in groups for role in self.role_map.get(group, ())}

    def mfa_satisfied(self, claims: Claims) -> bool:
        if not self.required_amr and not self.required_acr:
            return True
        return bool(self.required_amr & set(claims.amr)) or claims.acr in self.required_acr


@dataclass(frozen=True)
class FederatedResult:
    status: FederatedStatus
    user: User | None = None
    roles: frozenset[Role] = frozenset()

    @property
    def message(self) -> str:
        return REFUSALS.get(self.status, "")


def _who(claims: Claims) -> dict[str, object]:
    return {"via": "oidc", "iss": claims.issuer, "sub": claims.subject}


def find(session: Session, issuer: str, subject: str) -> User | None:
    return session.exec(
        select(User).where(User.oidc_issuer == issuer, User.oidc_subject == subject)
    ).first()


def _username_for(session: Session, claims: Claims) -> str:
    """A readable username from the provider's hint; a suffix from the subject when that
    name is taken (by a local account or another person), so no one inherits another's."""
    base = re.sub(r"[^a-z0-9._-]", "", claims.username_hint.lower())[:50].lstrip("._-")
    if not USERNAME_RE.match(base):
        base = "sso"
    if base != "sso" and get_by_username(session, base) is None:
        return base
    tag = hashlib.sha256(f"{claims.issuer}\n{claims.subject}".encode()).hexdigest()
    for length in (8, 16, 64):
        name = f"{base}-{tag[:length]}"[:64]
        if get_by_username(session, name) is None:
            return name
    raise RuntimeError("no free username for this identity")  # 2**256 collisions away


def _set_roles(
    session: Session, actor: Actor, user: User, old: set[Role], new: set[Role], claims: Claims
) -> None:
    assert user.id is not None
    session.exec(delete(UserRole).where(col(UserRole.user_id) == user.id))
    for role in sorted(new):
        session.add(UserRole(user_id=user.id, role=role.value))
    if old - new:
        web_sessions.end_all_for(session, user.id)
    audit.record(
        session,
        actor,
        "user.roles_from_idp",
        object_type="user",
        object_id=user.username,
        detail=_who(claims)
        | {
            "from": sorted(r.value for r in old),
            "to": sorted(r.value for r in new),
            "sessions_ended": bool(old - new),
        },
    )


def sign_in(session: Session, claims: Claims, policy: Policy, source: str) -> FederatedResult:
    """Decide and record a sign-in the provider vouched for (see the module's docstring).
    A refusal is a result, not an exception, so its audit event commits."""
    user = find(session, claims.issuer, claims.subject)
    actor = Actor(user.username if user is not None else f"oidc:{claims.subject}"[:64], source)
    who = _who(claims)

    def refuse(status: FederatedStatus, **detail: object) -> FederatedResult:
        audit.record(
            session,
            actor,
            "login.refused",
            object_type="user",
            object_id=user.username if user is not None else claims.subject[:64],
            detail=who | {"reason": status.value} | detail,
        )
        return FederatedResult(status, user)

    if not policy.mfa_satisfied(claims):
        return refuse(FederatedStatus.NO_MFA, amr=list(claims.amr), acr=claims.acr)
    roles = policy.roles_for(claims.groups)
    if user is not None and user.disabled:
        return refuse(FederatedStatus.DISABLED)
    if not roles:
        if user is not None and user.id is not None:
            old = roles_of(session, user.id)
            if old:
                _set_roles(session, actor, user, old, set(), claims)
            web_sessions.end_all_for(session, user.id)
        return refuse(FederatedStatus.NO_ROLE, groups=len(claims.groups))
    if user is None:
        user = User(
            username=_username_for(session, claims),
            display_name=claims.name.strip()[:120] or claims.subject[:120],
            # Never checked (a provider's account has no local password): no one's secret.
            password_hash=unusable_hash(),
            must_change_password=False,
            oidc_issuer=claims.issuer,
            oidc_subject=claims.subject,
        )
        session.add(user)
        session.flush()
        assert user.id is not None
        actor = Actor(user.username, source)
        for role in sorted(roles):
            session.add(UserRole(user_id=user.id, role=role.value))
        audit.record(
            session,
            actor,
            "user.created",
            object_type="user",
            object_id=user.username,
            detail=who | {"roles": sorted(r.value for r in roles)},
        )
    else:
        assert user.id is not None
        old = roles_of(session, user.id)
        if old != roles:
            _set_roles(session, actor, user, old, roles, claims)
        if claims.name.strip() and claims.name.strip()[:120] != user.display_name:
            user.display_name = claims.name.strip()[:120]
    user.last_login_at = utcnow()
    session.add(user)
    audit.record(
        session,
        actor,
        "login.succeeded",
        object_type="user",
        object_id=user.username,
        detail=who | {"amr": list(claims.amr), "acr": claims.acr},
    )
    return FederatedResult(FederatedStatus.OK, user, frozenset(roles))
