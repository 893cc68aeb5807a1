"""Staff sign-in: sessions, lockout, passwords."""

from __future__ import annotations

from pydantic import BaseModel, Field


class IdentitySettings(BaseModel):
    session_idle_minutes: int = Field(
        30, ge=1, le=24 * 60, description="A signed-in session ends after this long unused."
    )
    session_absolute_hours: int = Field(
        12, ge=1, le=7 * 24, description="A session ends this long after sign-in, used or not."
    )
    login_max_failures: int = Field(
        5, ge=1, le=100, description="Consecutive wrong passwords before the account locks."
    )
    login_lockout_seconds: int = Field(
        300,
        ge=1,
        le=86400,
        description="First lock's length; each further lock without a good sign-in doubles it "
        "(at most `login_lockout_max_seconds`).",
    )
    login_lockout_max_seconds: int = Field(
        900,
        ge=60,
        le=86400,
        description="Longest an account stays locked: what a stranger who knows a username "
        "can do to its owner.",
    )
    login_failures_per_source: int = Field(
        10,
        ge=1,
        le=1000,
        description="Failed sign-ins from one address in a minute before that address is "
        "answered 429 without a password check, whatever the username.",
    )
    refusals_per_source: int = Field(
        60,
        ge=1,
        le=100_000,
        description="Other refusals (bad API keys, refused uploads) from one address in a "
        "minute before it is answered 429 without a database look-up.",
    )
    password_min_length: int = Field(
        12, ge=8, le=128, description="Shortest password a user may choose."
    )
