"""Who may reach a handler, declared on the handler itself.

Every route must say: ``@public``, ``@signed_in`` or ``@requires(Role...)``. The
auth middleware refuses any handler that says nothing, so a new page is never open
by accident.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from appliance.models import Role, User
from appliance.web import keys

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ACCESS_ATTR = "_evr_access"
STREAMS_BODY_ATTR = "_evr_streams_body"
PERMISSIONS_ATTR = "_evr_permissions"
PUBLIC = "public"
SIGNED_IN = "signed_in"
API_KEY = "api_key"


def public(handler: Handler) -> Handler:
    setattr(handler, ACCESS_ATTR, PUBLIC)
    return handler


def signed_in(handler: Handler) -> Handler:
    setattr(handler, ACCESS_ATTR, SIGNED_IN)
    return handler


def api_key(handler: Handler) -> Handler:
    """For integrations: a Bearer API key, never a browser session (so no CSRF either)."""
    setattr(handler, ACCESS_ATTR, API_KEY)
    return handler


def requires(*roles: Role) -> Callable[[Handler], Handler]:
    """Any one of the roles will do."""

    def mark(handler: Handler) -> Handler:
        setattr(handler, ACCESS_ATTR, frozenset(roles))
        return handler

    return mark


def grants(*features: str) -> Callable[[Handler], Handler]:
    """Let this page use browser features (camera, microphone, geolocation)."""

    def mark(handler: Handler) -> Handler:
        setattr(handler, PERMISSIONS_ATTR, frozenset(features))
        return handler

    return mark


def streams_body(handler: Handler) -> Handler:
    """This handler reads its multipart body itself, as a stream (uploads larger than
    the app-wide request limit). The middleware then leaves a form's CSRF token to the
    handler, which must read it as the first part (``csrf_matches``) before any file."""
    setattr(handler, STREAMS_BODY_ATTR, True)
    return handler


def csrf_matches(request: web.Request, sent: str) -> bool:
    if keys.NEW_CSRF_COOKIE in request:
        return False
    return hmac.compare_digest(sent.encode(), request[keys.CSRF].encode())


def access_of(handler: Any) -> Any:
    return getattr(handler, ACCESS_ATTR, None)


def current_user(request: web.Request) -> User:
    user = request.get(keys.USER)
    if user is None:
        raise web.HTTPUnauthorized()
    return user


def current_roles(request: web.Request) -> frozenset[Role]:
    return request.get(keys.ROLES, frozenset())


def source_of(request: web.Request) -> str:
    return (request.remote or "")[:64]


def require_same_origin(request: web.Request) -> None:
    """A WebSocket is opened only from this site's own pages (no cross-site hijacking)."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        raise web.HTTPForbidden(text="Cross-origin WebSocket refused.")


SIGN_IN_THROTTLED = "Too many failed sign-ins from this address: try again in {seconds} seconds."


def safe_next(value: str | None) -> str:
    """Only a path on this site: never an absolute or protocol-relative URL.

    Judged as a browser would read it: control characters (a browser drops a tab or a
    newline, so ``/%09/evil.example`` decoded becomes ``//evil.example``) and backslashes (read
    as ``/``) are refused, then ``urlsplit`` must find no scheme and no host."""
    if not value or not value.startswith("/") or "\\" in value:
        return "/"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or value.startswith("//"):
        return "/"
    return value
