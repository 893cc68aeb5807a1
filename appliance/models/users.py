"""Accounts, their roles and their signed-in sessions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from appliance.models.base import now_field, time_field


class Role(StrEnum):
    HANDLER = "handler"
    SUPERVISOR = "supervisor"
    EVIDENCE_OFFICER = "evidence_officer"
    AUDITOR = "auditor"
    ADMIN = "admin"
    RVR_OFFICER = "rvr_officer"
    INFORMATION_MANAGER = "information_manager"  # subject access, the audit search
    EVALUATION_LEAD = "evaluation_lead"  # reads survey comments (audited)


class User(SQLModel, table=True):
    """A staff account. One made by the force's OpenID provider (just in time, at its
    first sign-in) is keyed by ``(oidc_issuer, oidc_subject)``, never by its email, and
    has no usable password. ``break_glass`` marks a box account kept for when the
    provider is down: with single sign-on on, only those sign in with a password."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("oidc_issuer", "oidc_subject"),)

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    display_name: str = Field(max_length=120)
    password_hash: str = Field(max_length=255)
    must_change_password: bool = True
    disabled: bool = False
    failed_logins: int = 0
    lockouts: int = 0
    locked_until: datetime | None = time_field()
    created_at: datetime = now_field()
    password_changed_at: datetime | None = time_field()
    last_login_at: datetime | None = time_field()
    oidc_issuer: str | None = Field(default=None, max_length=255)
    oidc_subject: str | None = Field(default=None, max_length=255)
    break_glass: bool = False


class UserRole(SQLModel, table=True):
    __tablename__ = "user_roles"
    __table_args__ = (UniqueConstraint("user_id", "role"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    role: str = Field(max_length=32)


class GrantState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"  # the requester unticked it, or the role was given directly


class RoleGrant(SQLModel, table=True):
    """A privileged role asked for on the web, given only when a second admin approves
    (services/identity/accounts.py says which roles and why)."""

    __tablename__ = "role_grants"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    role: str = Field(max_length=32)
    requested_by: str = Field(max_length=64)
    requested_at: datetime = now_field()
    state: str = Field(default=GrantState.PENDING.value, max_length=16, index=True)
    decided_by: str = Field(default="", max_length=64)
    decided_at: datetime | None = time_field()


class WebSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is kept."""

    __tablename__ = "web_sessions"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    csrf_token: str = Field(max_length=64)
    created_at: datetime = now_field()
    last_seen_at: datetime = now_field()
    source: str = Field(default="", max_length=64)
    ended_at: datetime | None = time_field()
    # Signed in with a password, the second factor still to come: only that page opens.
    needs_second_factor: bool = False
    # The challenge a security key must sign (WebAuthn), one at a time, used up by the
    # first answer, right or wrong.
    key_challenge: str | None = Field(default=None, max_length=128)
    key_challenge_at: datetime | None = time_field()
    # A sign-in through the force's provider: its ID token, for the provider's sign-out
    # (``id_token_hint``); cleared when the session ends.
    id_token_hint: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class TotpFactor(SQLModel, table=True):
    """A local account's authenticator app (RFC 6238). The secret is kept as the box
    needs it to check codes; ``last_step`` refuses a code used once already."""

    __tablename__ = "totp_factors"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", unique=True, ondelete="CASCADE")
    secret: str = Field(max_length=64)
    created_at: datetime = now_field()
    confirmed_at: datetime | None = time_field()
    last_step: int = 0


class SecurityKey(SQLModel, table=True):
    """A local account's security key (WebAuthn), by the name its owner gave it. Only the
    public key is kept; ``sign_count`` refuses an assertion replayed or made by a clone."""

    __tablename__ = "security_keys"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=64)
    credential_id: str = Field(max_length=1400, unique=True)  # base64url, at most 1023 bytes
    public_key: str = Field(max_length=2048)  # COSE, base64url
    sign_count: int = 0
    transports: str = Field(default="", max_length=128)
    created_at: datetime = now_field()
    last_used_at: datetime | None = time_field()


class RecoveryCode(SQLModel, table=True):
    """One of a local account's one-use codes for a lost authenticator; only its
    SHA-256 is kept (48 random bits each, one use, tried only after a right password and
    at most five times a session: no slow hash is needed)."""

    __tablename__ = "recovery_codes"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    code_hash: str = Field(max_length=64)
    used_at: datetime | None = time_field()
