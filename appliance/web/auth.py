"""Sign in (the local form, or the force's OpenID provider), sign out, change password.

The second factor owed after a password, and enrolling one, are in ``second_factor.py``."""

from __future__ import annotations

import asyncio

import aiohttp_jinja2
from aiohttp import web

from appliance import metrics
from appliance.models import User
from appliance.oidc import BROWSER_COOKIE, OidcError
from appliance.services.identity import (
    accounts,
    federation,
    second_factor,
    signing_in,
    web_sessions,
)
from appliance.services.identity.accounts import AccountError
from appliance.services.identity.signing_in import SignInStatus
from appliance.web import keys
from appliance.web.access import (
    SIGN_IN_THROTTLED,
    current_user,
    public,
    safe_next,
    signed_in,
    source_of,
)
from appliance.web.toolkit import note_refusal

routes = web.RouteTableDef()


@routes.get("/login", name="login")
@public
async def login_form(request: web.Request) -> web.StreamResponse:
    if request.get(keys.USER) is not None:
        raise web.HTTPSeeOther("/")
    return aiohttp_jinja2.render_template(
        "login.html",
        request,
        {"next": safe_next(request.query.get("next")), "sso": keys.OIDC in request.app},
    )


WRONG = "Wrong username or password."
NOT_BREAK_GLASS = (
    'This box signs staff in with their force account: use "Sign in with your force '
    "account\". A password here opens only the box's break-glass accounts."
)


@routes.post("/login", name="login_submit")
@public
async def login(request: web.Request) -> web.StreamResponse:
    """Read the account, check the password outside any transaction (one check at a
    time, in a thread), then record the result. Every failure gets the same answer,
    whether the username exists, the password is wrong or the account is locked, so
    usernames cannot be found by trying; an address that fails too often is answered
    429 from memory, before any check."""
    form = await request.post()
    username = str(form.get("username", ""))[:128]
    password = str(form.get("password", ""))[:1024]
    next_path = safe_next(str(form.get("next", "/")))
    settings = request.app[keys.SETTINGS]
    db = request.app[keys.DB]
    guards = request.app[keys.GUARDS]
    source = source_of(request)
    policy = signing_in.LockoutPolicy.from_settings(settings)

    def page(message: str, status: int) -> web.StreamResponse:
        return aiohttp_jinja2.render_template(
            "login.html",
            request,
            {
                "error": message,
                "username": username,
                "next": next_path,
                "sso": keys.OIDC in request.app,
            },
            status=status,
        )

    if guards.sign_in.blocked(source):
        metrics.SIGN_INS.labels("throttled").inc()
        await note_refusal(
            request, "login.throttled", object_type="user", object_id=username.lower()[:64]
        )
        seconds = guards.sign_in.retry_after(source)
        response = page(SIGN_IN_THROTTLED.format(seconds=seconds), 429)
        response.headers["Retry-After"] = str(seconds)
        return response

    def read() -> signing_in.Credentials:
        with db.reader() as session:
            return signing_in.credentials(session, username)

    def record(
        creds: signing_in.Credentials, matched: bool, rehashed: str | None
    ) -> tuple[signing_in.SignInResult, str | None]:
        with db.session() as session:
            result = signing_in.record_sign_in(
                session,
                creds,
                matched,
                rehashed,
                source,
                policy,
                guards.tally,
                break_glass_only=settings.oidc_issuer is not None,
            )
            token = None
            if result.user is not None:
                assert result.user.id is not None
                token, _ = web_sessions.start(
                    session,
                    result.user,
                    source,
                    needs_second_factor=second_factor.has_factor(session, result.user.id),
                )
            return result, token

    guards.sign_in.hit(source)  # counted while in flight; a success is refunded
    creds = await asyncio.to_thread(read)
    matched, rehashed = await asyncio.get_running_loop().run_in_executor(
        guards.password_checks, signing_in.check_and_refresh, creds, password
    )
    result, token = await asyncio.to_thread(record, creds, matched, rehashed)
    refused = result.status is SignInStatus.NOT_BREAK_GLASS
    metrics.SIGN_INS.labels("refused" if refused else result.status.value).inc()
    if result.status is SignInStatus.OK and token is not None:
        # The middleware sends a session still owing its second factor to that page.
        response = web.HTTPSeeOther(next_path)
        _set_session_cookie(response, token)
        response.del_cookie(keys.CSRF_COOKIE, path="/")
        guards.sign_in.refund(source)
        raise response
    if refused:
        guards.sign_in.refund(source)  # the right password: no guess to count
        return _refused(request, NOT_BREAK_GLASS, 403)
    return page(WRONG, 401)


def _set_session_cookie(response: web.StreamResponse, token: str) -> None:
    response.set_cookie(
        keys.SESSION_COOKIE, token, secure=True, httponly=True, samesite="Strict", path="/"
    )


@routes.get("/oidc/start", name="oidc_start")
@public
async def oidc_start(request: web.Request) -> web.StreamResponse:
    """Send the browser to the force's provider, with a cookie that binds the answer to
    this browser (SameSite=Lax: it must come back on the provider's redirect). Each start
    holds a pending sign-in in memory, so one address may begin only so many a minute
    (``oidc_starts_per_source``); past that it is answered 429, audited through the
    refusal tally."""
    rp = request.app.get(keys.OIDC)
    if rp is None:
        raise web.HTTPNotFound()
    guards = request.app[keys.GUARDS]
    source = source_of(request)
    if guards.sso_starts.blocked(source):
        metrics.SIGN_INS.labels("throttled").inc()
        await note_refusal(request, "login.throttled", object_type="oidc", object_id="start")
        seconds = guards.sso_starts.retry_after(source)
        response = _refused(
            request,
            f"Too many sign-ins begun from this address: try again in {seconds} seconds.",
            429,
        )
        response.headers["Retry-After"] = str(seconds)
        return response
    guards.sso_starts.hit(source)
    try:
        url, browser = await rp.begin(safe_next(request.query.get("next")))
    except OidcError as exc:
        return _refused(request, str(exc), 503)
    response = web.HTTPSeeOther(url)
    response.set_cookie(
        BROWSER_COOKIE, browser, secure=True, httponly=True, samesite="Lax", path="/", max_age=600
    )
    raise response


def _refused(request: web.Request, message: str, status: int) -> web.StreamResponse:
    return aiohttp_jinja2.render_template(
        "sign_in_refused.html", request, {"message": message}, status=status
    )


@routes.get("/oidc/callback", name="oidc_callback")
@public
async def oidc_callback(request: web.Request) -> web.StreamResponse:
    """The provider's answer. The protocol's refusals (state, token, keys) are audited
    through the refusal tally, as any outsider's are; a verified identity goes to the
    identity service, which decides and records in one transaction. The session cookie is
    set on a page that moves on by itself: a SameSite=Strict cookie set at the end of a
    redirect chain that began at the provider would not be sent on a further redirect."""
    rp = request.app.get(keys.OIDC)
    if rp is None:
        raise web.HTTPNotFound()
    guards = request.app[keys.GUARDS]
    source = source_of(request)
    if guards.sign_in.blocked(source):
        metrics.SIGN_INS.labels("throttled").inc()
        await note_refusal(request, "login.throttled", object_type="oidc")
        response = _refused(request, "Too many failed sign-ins from this address.", 429)
        response.headers["Retry-After"] = str(guards.sign_in.retry_after(source))
        return response
    state = request.query.get("state", "")[:256]
    code = request.query.get("code", "")[:4096]
    try:
        pending = rp.take(state, request.cookies.get(BROWSER_COOKIE))
        if "error" in request.query or not code:
            raise OidcError("provider_refused", "The force's sign-in service did not sign you in.")
        identity = await rp.finish(pending, code)
    except OidcError as exc:
        guards.sign_in.hit(source)
        metrics.SIGN_INS.labels("wrong").inc()
        await note_refusal(
            request,
            "login.refused",
            object_type="oidc",
            object_id=exc.reason,
            detail={"via": "oidc", "reason": exc.reason},
        )
        return _refused(request, str(exc), 401)
    policy = federation.Policy.from_settings(request.app[keys.SETTINGS])
    claims = federation.Claims(
        issuer=identity.issuer,
        subject=identity.subject,
        name=identity.name,
        username_hint=identity.username_hint,
        groups=identity.groups,
        amr=identity.amr,
        acr=identity.acr,
    )
    db = request.app[keys.DB]

    def record() -> tuple[federation.FederatedResult, str | None]:
        with db.session() as session:
            result = federation.sign_in(session, claims, policy, source)
            token = None
            if result.user is not None and result.status is federation.FederatedStatus.OK:
                token, _ = web_sessions.start(
                    session, result.user, source, id_token_hint=identity.id_token
                )
            return result, token

    result, token = await asyncio.to_thread(record)
    metrics.SIGN_INS.labels("ok" if token else "refused").inc()
    if token is None:
        response = _refused(request, result.message, 403)
    else:
        response = aiohttp_jinja2.render_template(
            "signed_in.html", request, {"next": pending.next_path}
        )
        _set_session_cookie(response, token)
        response.del_cookie(keys.CSRF_COOKIE, path="/")
    response.del_cookie(BROWSER_COOKIE, path="/")
    return response


@routes.post("/logout", name="logout")
@signed_in
async def logout(request: web.Request) -> web.StreamResponse:
    """End the box's session; someone who came through the force's provider is offered
    its sign-out too (the box cannot end that session for them)."""
    db = request.app[keys.DB]
    user = current_user(request)
    with db.session() as session:
        hint = web_sessions.sign_out(session, request[keys.WEB_SESSION], user, source_of(request))
    rp = request.app.get(keys.OIDC)
    if user.oidc_subject is not None and rp is not None:
        settings = request.app[keys.SETTINGS]
        post_logout = f"{settings.effective_public_url}/login"
        end_session = await rp.end_session_url(post_logout, hint)
        response: web.StreamResponse = aiohttp_jinja2.render_template(
            "signed_out.html", request, {"end_session": end_session}
        )
        response.del_cookie(keys.SESSION_COOKIE, path="/")
        return response
    redirect = web.HTTPSeeOther("/login")
    redirect.del_cookie(keys.SESSION_COOKIE, path="/")
    raise redirect


@routes.get("/account/password", name="password")
@signed_in
async def password_form(request: web.Request) -> web.StreamResponse:
    return aiohttp_jinja2.render_template(
        "password.html", request, {"forced": current_user(request).must_change_password}
    )


@routes.post("/account/password", name="password_submit")
@signed_in
async def change_password(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    current = str(form.get("current_password", ""))[:1024]
    new = str(form.get("new_password", ""))[:1024]
    confirm = str(form.get("confirm_password", ""))[:1024]
    user = current_user(request)
    settings = request.app[keys.SETTINGS]
    db = request.app[keys.DB]
    source = source_of(request)
    keep = request[keys.WEB_SESSION].id

    def attempt() -> str | None:
        """The refusal, if any. A refusal still commits: a wrong current password is
        audited. The two Argon2 runs happen before the write transaction opens."""
        if new != confirm:
            return "the new password and its confirmation differ"
        with db.reader() as session:
            stored = session.get(User, user.id)
        if stored is None:
            return "this account no longer exists"
        policy = accounts.PasswordPolicy.from_settings(settings)
        change = accounts.prepare_password_change(stored, current, new, policy)
        with db.session() as session:
            fresh = session.get(User, user.id)
            if fresh is None:
                return "this account no longer exists"
            try:
                accounts.change_password(session, fresh, change, source, keep_session_id=keep)
            except AccountError as exc:
                return str(exc)
        return None

    refusal = await asyncio.to_thread(attempt)
    if refusal is not None:
        return aiohttp_jinja2.render_template(
            "password.html",
            request,
            {"forced": user.must_change_password, "error": f"Not changed: {refusal}."},
            status=400,
        )
    raise web.HTTPSeeOther("/?notice=password_changed")
