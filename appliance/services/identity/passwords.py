"""Argon2id password hashing (argon2-cffi's RFC 9106 low-memory profile)."""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# RFC 9106's second recommended option (64 MiB, t=3, p=4): the first needs 2 GiB a hash.
PROFILE = profiles.RFC_9106_LOW_MEMORY
_hasher = PasswordHasher.from_parameters(PROFILE)


@cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so a miss costs as long as a hit.

    Made on first use, not at import: every `evr` command imports this module and most
    never check a password.
    """
    return _hasher.hash(secrets.token_urlsafe(16))


def unusable_hash() -> str:
    """For an account with no password of its own (one made at its first sign-in through
    the force's provider): a hash of a secret nobody was told, made once per process, so
    a sign-in's transaction never waits for a hash."""
    return _dummy_hash()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        matched = _hasher.verify(password_hash or _dummy_hash(), password)
        return matched and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def generate_password() -> str:
    """A one-time password to hand over: 20 URL-safe characters (~120 bits)."""
    return secrets.token_urlsafe(15)
