"""Request id, logging and metrics; sign-in; CSRF; forced password change; headers."""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import re
import secrets
import time

import aiohttp_jinja2
from aiohttp import web
from aiohttp.web_urldispatcher import StaticResource
from sqlmodel import Session
from yarl import URL

from appliance import metrics
from appliance.db import Database
from appliance.logs import request_id_var
from appliance.models import Role, User, WebSession
from appliance.services.identity import accounts, api_keys, second_factor, web_sessions
from appliance.web import keys
from appliance.web.access import (
    API_KEY,
    PERMISSIONS_ATTR,
    PUBLIC,
    SIGNED_IN,
    STREAMS_BODY_ATTR,
    Handler,
    access_of,
    source_of,
)
from appliance.web.toolkit import ASSETS_ROUTE, api_error, note_refusal, too_many

log = logging.getLogger("evr.http")

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Pages a user who must change their password may still reach.
PASSWORD_CHANGE_ROUTES = {"password", "password_submit", "logout"}
# Pages an admin who must enrol a second factor may reach.
ENROL_ROUTES = {
    "enrol_factor",
    "enrol_factor_submit",
    "security_keys",
    "security_key_options",
    "security_key_add",
    "logout",
    "password",
    "password_submit",
}

CSP_DIRECTIVES = (
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "font-src 'self'",
    "manifest-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
)
# A Host header that can stand in a CSP source: a name or IPv4 address, or [IPv6], and a port.
CSP_HOST_RE = re.compile(r"^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")


@functools.lru_cache(maxsize=64)
def content_security_policy(public_url: str, host: str) -> str:
    """The page's CSP, naming the signalling origin: WebKit before its 2022 fix (Safari
    before 15.4 on the iPhones callers still carry) does not count ``wss:`` as ``'self'``,
    so ``connect-src 'self'`` alone refuses the call's WebSocket. ``public_url`` is the
    box's (the origin callers' links name); ``host`` the one this request came to (a
    handler on the LAN may reach the box by another name), used only when it is a plain
    host[:port]."""
    scheme, _, authority = str(URL(public_url).origin()).partition("://")
    scheme = "wss" if scheme == "https" else "ws"
    sources = [f"{scheme}://{authority}"]
    if CSP_HOST_RE.match(host) and f"{scheme}://{host}" not in sources:
        sources.append(f"{scheme}://{host}")
    connect = " ".join(["connect-src 'self'", *sources])
    return "; ".join([*CSP_DIRECTIVES[:6], connect, *CSP_DIRECTIVES[6:]])


BROWSER_FEATURES = ("camera", "microphone", "geolocation", "display-capture", "usb", "payment")


def _route_template(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"


def _route_name(request: web.Request) -> str | None:
    route = request.match_info.route
    return route.name if route is not None else None


def _is_static(request: web.Request) -> bool:
    route = request.match_info.route
    return route is not None and isinstance(route.resource, StaticResource)


def _is_caller_asset(request: web.Request) -> bool:
    resource = request.match_info.route.resource
    return _is_static(request) and resource is not None and resource.name == ASSETS_ROUTE


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: request id, one log line, metrics; a 500 page for what escapes."""
    incoming = request.headers.get("X-Request-Id", "")
    request_id = incoming if REQUEST_ID_RE.match(incoming) else secrets.token_hex(8)
    request_id_var.set(request_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
    except web.HTTPException as exc:
        status = exc.status
        if status >= 400 and request.path.startswith("/api/"):
            response = api_error(status, _slug(exc.reason), exc.text or exc.reason)
        elif status < 400 or "text/html" not in request.headers.get("Accept", ""):
            exc.headers["X-Request-Id"] = request_id
            raise
        else:
            response = _error_page(request, exc)
    except Exception:
        log.exception("unhandled error", extra={"route": _route_template(request)})
        response = aiohttp_jinja2.render_template(
            "error.html",
            request,
            {"status": 500, "message": "Something went wrong on the box."},
            status=500,
        )
    finally:
        elapsed = time.perf_counter() - started
        route = _route_template(request)
        metrics.HTTP_REQUESTS.labels(request.method, route, str(status)).inc()
        metrics.HTTP_REQUEST_DURATION.labels(request.method, route).observe(elapsed)
        log.info(
            "%s %s %s",
            request.method,
            route,
            status,
            extra={
                "route": route,
                "method": request.method,
                "status": status,
                "duration_ms": round(elapsed * 1000, 1),
            },
        )
    response.headers["X-Request-Id"] = request_id
    return response


ERROR_MESSAGES = {
    401: "Sign in first.",
    403: "You do not have access to this page.",
    404: "There is no page at this address.",
    405: "That cannot be done here.",
    413: "What was sent is too large.",
}


def _slug(reason: str) -> str:
    return reason.lower().replace(" ", "_").replace("-", "_")


def _error_page(request: web.Request, exc: web.HTTPException) -> web.StreamResponse:
    """A page in the site's layout for a browser; the exception's own text for others."""
    default = f"{exc.status}: {exc.reason}"
    message = (
        exc.text if exc.text and exc.text != default else ERROR_MESSAGES.get(exc.status, exc.reason)
    )
    return aiohttp_jinja2.render_template(
        "error.html", request, {"status": exc.status, "message": message}, status=exc.status
    )


def _resolve_writing(
    db: Database, token: str, policy: web_sessions.SessionPolicy, totp_required: bool
) -> tuple[tuple[WebSession, User] | None, set[Role], bool]:
    with db.session() as session:
        resolved = web_sessions.resolve(session, token, policy)
        roles = accounts.roles_of(session, resolved[0].user_id) if resolved else set()
        enrol = _must_enrol(session, resolved, roles, totp_required)
    return resolved, roles, enrol


def _must_enrol(
    session: Session,
    resolved: tuple[WebSession, User] | None,
    roles: set[Role],
    required: bool,
) -> bool:
    """A local admin without a confirmed authenticator or a security key, when the
    settings require a second factor."""
    if resolved is None or not second_factor.required_for(resolved[1], roles, required):
        return False
    return not second_factor.has_factor(session, resolved[0].user_id)


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Load the session, enforce the handler's declared access and the CSRF token."""
    if _is_static(request):
        return await handler(request)
    settings = request.app[keys.SETTINGS]
    db = request.app[keys.DB]
    if access_of(request.match_info.handler) == API_KEY:
        return await _with_api_key(request, handler)
    token = request.cookies.get(keys.SESSION_COOKIE)
    if token:
        policy = web_sessions.SessionPolicy.from_settings(settings)
        # Read without the write lock (on SQLite a writer here would stall the loop
        # behind any chat or audit write); the rare write goes to a thread.
        totp_required = settings.local_admin_totp_required
        with db.reader() as session:
            resolved, write = web_sessions.look_up(session, token, policy)
            roles = accounts.roles_of(session, resolved[0].user_id) if resolved else set()
            enrol = _must_enrol(session, resolved, roles, totp_required)
        if write:
            resolved, roles, enrol = await asyncio.to_thread(
                _resolve_writing, db, token, policy, totp_required
            )
        if resolved is not None:
            web_session, signed_in = resolved
            request[keys.WEB_SESSION] = web_session
            request[keys.CSRF] = web_session.csrf_token
            if web_session.needs_second_factor:
                # Not signed in for any page, public ones included, until the code.
                request[keys.HALF_SIGNED_IN] = signed_in
            else:
                request[keys.USER] = signed_in
                request[keys.ROLES] = frozenset(roles)
                request[keys.MUST_ENROL] = enrol

    if keys.CSRF not in request:
        anon = request.cookies.get(keys.CSRF_COOKIE, "")
        if not anon or len(anon) > 128:
            anon = secrets.token_urlsafe(32)
            request[keys.NEW_CSRF_COOKIE] = anon
        request[keys.CSRF] = anon

    access = access_of(request.match_info.handler)
    if access is None and request.match_info.http_exception is None:
        log.error("route without an access rule refused", extra={"route": _route_template(request)})
        raise web.HTTPForbidden(text="This page has no access rule.")
    if request.method in UNSAFE_METHODS and access is not None:
        await _check_csrf(request)

    user = request.get(keys.USER)
    if access is not None and access != PUBLIC:
        if user is None:
            if request.method == "GET" and "websocket" not in request.headers.get("Upgrade", ""):
                page = "/login/second-factor" if keys.HALF_SIGNED_IN in request else "/login"
                raise web.HTTPSeeOther(f"{page}?next={request.rel_url.path}")
            raise web.HTTPUnauthorized(text="Sign in first.")
        route = _route_name(request)
        if user.must_change_password and route not in PASSWORD_CHANGE_ROUTES:
            raise web.HTTPSeeOther("/account/password")
        elif request.get(keys.MUST_ENROL) and route not in ENROL_ROUTES:
            if request.method == "GET":
                raise web.HTTPSeeOther("/account/second-factor")
            raise web.HTTPForbidden(text="Set up your authenticator app or security key first.")
        if access != SIGNED_IN and not (access & request[keys.ROLES]):
            raise web.HTTPForbidden(text="Your role does not allow this.")
    response = await handler(request)
    if keys.NEW_CSRF_COOKIE in request and response.content_type == "text/html":
        response.set_cookie(
            keys.CSRF_COOKIE,
            request[keys.NEW_CSRF_COOKIE],
            secure=True,
            httponly=True,
            samesite="Strict",
            path="/",
        )
    return response


async def _with_api_key(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An integration's request: a live Bearer key, or a JSON 401 audited through the
    refusal tally; an address refused too often gets 429 before any look-up. On the
    client-certificate listener, the certificate the handshake verified instead."""
    if keys.CLIENT_CERTIFICATES in request.app:
        return await _with_client_certificate(request, handler)
    header = request.headers.get("Authorization", "")
    presented = header[7:].strip() if header[:7].lower() == "bearer " else None
    guards = request.app[keys.GUARDS]
    source = source_of(request)
    if guards.refusals.blocked(source):
        await note_refusal(request, "api.throttled", actor="api", object_type="api_key")
        return too_many(guards.refusals.retry_after(source))
    db = request.app[keys.DB]
    with db.reader() as session:
        client, reason = api_keys.look_up(session, presented)
    if client is not None:
        with db.session() as session:
            api_keys.mark_used(session, client)
        request[keys.API_CLIENT] = client
        return await handler(request)
    guards.refusals.hit(source)
    await note_refusal(
        request,
        "api.refused",
        actor="api",
        object_type="api_key",
        object_id=api_keys.prefix_of(presented),
        detail={"reason": reason},
    )
    response = api_error(
        401, "unauthorised", "send a live API key as 'Authorization: Bearer <key>'"
    )
    response.headers["WWW-Authenticate"] = 'Bearer realm="evr"'
    return response


async def _with_client_certificate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The handshake already refused a certificate the force CA did not issue, or one
    expired; here a verified one is mapped to its API client, or refused 403 (the box
    knows who it is, and they may not) and audited as a refused API key is."""
    guards = request.app[keys.GUARDS]
    source = source_of(request)
    if guards.refusals.blocked(source):
        await note_refusal(request, "api.throttled", actor="api", object_type="client_certificate")
        return too_many(guards.refusals.retry_after(source))
    ssl_object = request.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    names = api_keys.certificate_names(der) if der else []
    db = request.app[keys.DB]
    certificates: dict[str, str] = request.app[keys.CLIENT_CERTIFICATES]
    with db.reader() as session:
        client, reason = api_keys.look_up_certificate(session, names, certificates)
    if client is not None:
        with db.session() as session:
            api_keys.mark_used(session, client)
        request[keys.API_CLIENT] = client
        return await handler(request)
    guards.refusals.hit(source)
    await note_refusal(
        request,
        "api.refused",
        actor="api",
        object_type="client_certificate",
        object_id=(names[0] if names else "")[:128],
        detail={"reason": reason or "missing", "names": names[:8]},
    )
    return api_error(403, "forbidden", "this certificate is not mapped to a live API client")


async def _check_csrf(request: web.Request) -> None:
    expected = request[keys.CSRF]
    sent = request.headers.get(keys.CSRF_HEADER, "")
    streams = getattr(request.match_info.handler, STREAMS_BODY_ATTR, False)
    if not sent and streams and request.content_type == "multipart/form-data":
        return  # the handler checks the form's first part before it reads any file
    if not sent and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        form = await request.post()
        value = form.get(keys.CSRF_FIELD, "")
        sent = value if isinstance(value, str) else ""
    if keys.NEW_CSRF_COOKIE in request or not hmac.compare_digest(sent.encode(), expected.encode()):
        log.warning("CSRF token missing or wrong", extra={"route": _route_template(request)})
        raise web.HTTPForbidden(
            text="The form had expired or was not sent from this site. "
            "Reload the page and try again."
        )


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every response, errors and static files included (an on_response_prepare hook)."""
    headers = response.headers
    settings = request.app[keys.SETTINGS]
    headers["Content-Security-Policy"] = content_security_policy(
        settings.effective_public_url, request.host
    )
    headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "no-referrer"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    granted: frozenset[str] = getattr(request.match_info.handler, PERMISSIONS_ATTR, frozenset())
    headers["Permissions-Policy"] = ", ".join(
        f"{feature}=(self)" if feature in granted else f"{feature}=()"
        for feature in BROWSER_FEATURES
    )
    if _is_static(request) and not _is_caller_asset(request):
        headers.setdefault("Cache-Control", "no-cache")
    else:
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
