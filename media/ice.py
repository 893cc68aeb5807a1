"""TURN credentials for coturn's REST API (``use-auth-secret``)."""

import base64
import hashlib
import hmac
import time

from media.config import IceServer


def turn_credentials(
    secret: str | bytes, user: str, ttl_s: int = 3600, now: float | None = None
) -> tuple[str, str]:
    """Return ``(username, credential)`` that coturn accepts until ``now + ttl_s``.

    coturn recomputes base64(HMAC-SHA1(secret, username)) and checks the expiry in
    the username, so nothing has to be stored per call.
    """
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    if ":" in user:
        raise ValueError("user must not contain ':' (coturn splits the username on it)")
    expiry = int(now if now is not None else time.time()) + ttl_s
    username = f"{expiry}:{user}"
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def turn_server(
    urls: list[str], secret: str | bytes, user: str, ttl_s: int = 3600, now: float | None = None
) -> IceServer:
    """An :class:`IceServer` carrying fresh REST credentials for ``urls``."""
    username, credential = turn_credentials(secret, user, ttl_s=ttl_s, now=now)
    return IceServer(urls=list(urls), username=username, credential=credential)
