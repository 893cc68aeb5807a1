"""Sign in (the local form, or the force's OpenID provider), sign out, change password."""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import quote, urlsplit

import aiohttp_jinja2
from aiohttp import web

from appliance import metrics
from appliance.models import User
from appliance.oidc import BROWSER_COOKIE, OidcError
from appliance.services.identity import (
    accounts,
    federation,
    second_factor,
    security_keys,
    web_sessions,
)
from appliance.services.identity.accounts import AccountError, SignInStatus
from appliance.web import keys
from appliance.web.access import current_user, public, signed_in, source_of
from appliance.web.toolkit import note_refusal

routes = web.RouteTableDef()


def _safe_next(value: str | None) -> str:
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


@routes.get("/login", name="login")
@public
async def login_form(request: web.Request) -> web.StreamResponse:
    if request.get(keys.USER) is not None:
        raise web.HTTPSeeOther("/")
    return aiohttp_jinja2.render_template(
        "login.html",
        request,
        {"next": _safe_next(request.query.get("next")), "sso": keys.OIDC in request.app},
    )


WRONG = "Wrong username or password."
NOT_BREAK_GLASS = (
    'This box signs staff in with their force account: use "Sign in with your force '
    "account\". A password here opens only the box's break-glass accounts."
)
THROTTLED = "Too many failed sign-ins from this address: try again in {seconds} seconds."


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
    next_path = _safe_next(str(form.get("next", "/")))
    settings = request.app[keys.SETTINGS]
    db = request.app[keys.DB]
    guards = request.app[keys.GUARDS]
    source = source_of(request)
    policy = accounts.LockoutPolicy.from_settings(settings)

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
        response = page(THROTTLED.format(seconds=seconds), 429)
        response.headers["Retry-After"] = str(seconds)
        return response

    def read() -> accounts.Credentials:
        with db.reader() as session:
            return accounts.credentials(session, username)

    def record(
        creds: accounts.Credentials, matched: bool
    ) -> tuple[accounts.SignInResult, str | None]:
        with db.session() as session:
            result = accounts.record_sign_in(
                session,
                creds,
                matched,
                password,
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
    matched = await asyncio.get_running_loop().run_in_executor(
        guards.password_checks, accounts.check_password, creds, password
    )
    result, token = await asyncio.to_thread(record, creds, matched)
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
        url, browser = await rp.begin(_safe_next(request.query.get("next")))
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
                token, _ = web_sessions.start(session, result.user, source)
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
        web_sessions.sign_out(session, request[keys.WEB_SESSION], user, source_of(request))
    rp = request.app.get(keys.OIDC)
    if user.oidc_subject is not None and rp is not None:
        settings = request.app[keys.SETTINGS]
        end_session = await rp.end_session_url(f"{settings.effective_public_url}/login")
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
        """The refusal, if any. A refusal still commits: a wrong current password is audited."""
        if new != confirm:
            return "the new password and its confirmation differ"
        with db.session() as session:
            try:
                accounts.change_password(
                    session,
                    session.merge(user),
                    current,
                    new,
                    source,
                    accounts.PasswordPolicy.from_settings(settings),
                    keep_session_id=keep,
                )
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


CODE_WRONG = "That code is not right, or was used already: try the next one."


def _half_signed_in(request: web.Request) -> User:
    """The account whose password this session gave, its code still owed (public pages:
    the middleware signs such a session in for nothing)."""
    user = request.get(keys.HALF_SIGNED_IN)
    if user is None:
        raise web.HTTPSeeOther("/" if keys.USER in request else "/login")
    return user


def _has_keys(request: web.Request, user: User) -> bool:
    assert user.id is not None
    with request.app[keys.DB].reader() as session:
        return bool(security_keys.keys_of(session, user.id))


@routes.get("/login/second-factor", name="second_factor")
@public
async def second_factor_form(request: web.Request) -> web.StreamResponse:
    """The code form, and the security key button when the account has a key."""
    user = _half_signed_in(request)
    return aiohttp_jinja2.render_template(
        "second_factor.html",
        request,
        {"next": _safe_next(request.query.get("next")), "has_keys": _has_keys(request, user)},
    )


@routes.post("/login/second-factor", name="second_factor_submit")
@public
async def second_factor_submit(request: web.Request) -> web.StreamResponse:
    """The code from the authenticator app, or a recovery code. A wrong one counts
    towards the address's sign-in throttle as a wrong password does."""
    form = await request.post()
    code = str(form.get("code", ""))[:32]
    next_path = _safe_next(str(form.get("next", "/")))
    guards = request.app[keys.GUARDS]
    source = source_of(request)
    if guards.sign_in.blocked(source):
        response = aiohttp_jinja2.render_template(
            "second_factor.html",
            request,
            {"next": next_path, "error": THROTTLED.format(seconds=60)},
            status=429,
        )
        response.headers["Retry-After"] = str(guards.sign_in.retry_after(source))
        return response
    user = _half_signed_in(request)
    db = request.app[keys.DB]
    web_session = request[keys.WEB_SESSION]

    def check() -> bool:
        with db.session() as session:
            return second_factor.verify(
                session, session.merge(web_session), session.merge(user), code, source
            )

    if await asyncio.to_thread(check):
        raise web.HTTPSeeOther(next_path)
    guards.sign_in.hit(source)
    return aiohttp_jinja2.render_template(
        "second_factor.html",
        request,
        {"next": next_path, "error": CODE_WRONG, "has_keys": _has_keys(request, user)},
        status=401,
    )


@routes.get("/account/second-factor", name="enrol_factor")
@signed_in
async def enrol_form(request: web.Request) -> web.StreamResponse:
    """A new secret and its QR code, drawn on the box; confirmed by the form below."""
    db = request.app[keys.DB]
    user = current_user(request)
    issuer = f"EVR {request.app[keys.SETTINGS].force_name}"

    def begin() -> second_factor.Enrolment | str:
        with db.session() as session:
            try:
                return second_factor.begin(session, session.merge(user), issuer)
            except accounts.AccountError as exc:
                return str(exc)

    enrolment = await asyncio.to_thread(begin)
    if isinstance(enrolment, str):
        return aiohttp_jinja2.render_template(
            "enrol_factor.html", request, {"refusal": enrolment}, status=409
        )
    return aiohttp_jinja2.render_template(
        "enrol_factor.html",
        request,
        {
            "secret": enrolment.secret,
            "qr": base64.b64encode(enrolment.qr_svg.encode()).decode(),
        },
    )


@routes.post("/account/second-factor", name="enrol_factor_submit")
@signed_in
async def enrol_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    code = str(form.get("code", ""))[:32]
    db = request.app[keys.DB]
    user = current_user(request)
    source = source_of(request)

    def confirm() -> list[str] | None:
        with db.session() as session:
            return second_factor.confirm(session, session.merge(user), code, source)

    codes = await asyncio.to_thread(confirm)
    if codes is None:
        return aiohttp_jinja2.render_template(
            "enrol_factor.html",
            request,
            {"refusal": "That code did not match: open this page again and scan the new code."},
            status=400,
        )
    return aiohttp_jinja2.render_template("recovery_codes.html", request, {"codes": codes})


def _relying_party(request: web.Request) -> security_keys.RelyingParty:
    """The box as its staff reach it: its public URL's host is the RP id."""
    settings = request.app[keys.SETTINGS]
    return security_keys.RelyingParty.from_public_url(
        settings.effective_public_url, settings.force_name
    )


async def _security_keys_page(
    request: web.Request, error: str = "", status: int = 200
) -> web.StreamResponse:
    db = request.app[keys.DB]
    user = current_user(request)
    assert user.id is not None
    with db.reader() as session:
        owned = security_keys.keys_of(session, user.id)
    return aiohttp_jinja2.render_template(
        "security_keys.html",
        request,
        {
            "keys": owned,
            "error": error,
            "added": request.query.get("added", "")[:64],
            "force_account": user.oidc_subject is not None,
        },
        status=status,
    )


@routes.get("/account/security-keys", name="security_keys")
@signed_in
async def security_keys_form(request: web.Request) -> web.StreamResponse:
    """The account's keys, and a form to enrol another (its script does the ceremony)."""
    return await _security_keys_page(request)


@routes.post("/account/security-keys/options", name="security_key_options")
@signed_in
async def security_key_options(request: web.Request) -> web.StreamResponse:
    """A fresh challenge for ``navigator.credentials.create``, kept on this session."""
    db = request.app[keys.DB]
    user = current_user(request)
    rp = _relying_party(request)

    def options() -> str | AccountError:
        with db.session() as session:
            try:
                return security_keys.registration_options(
                    session, session.merge(request[keys.WEB_SESSION]), session.merge(user), rp
                )
            except AccountError as exc:
                return exc

    made = await asyncio.to_thread(options)
    if isinstance(made, AccountError):
        return web.json_response({"error": str(made)}, status=409)
    return web.Response(text=made, content_type="application/json")


@routes.post("/account/security-keys", name="security_key_add")
@signed_in
async def security_key_add(request: web.Request) -> web.StreamResponse:
    """The key's answer, posted by the page's script with the name typed for it. The
    account's first factor shows its recovery codes, once."""
    form = await request.post()
    name = str(form.get("name", ""))[:200]
    credential = str(form.get("credential", ""))[:16_384]
    db = request.app[keys.DB]
    user = current_user(request)
    rp = _relying_party(request)
    source = source_of(request)

    def enrol() -> security_keys.Enrolled:
        with db.session() as session:
            return security_keys.register(
                session,
                session.merge(request[keys.WEB_SESSION]),
                session.merge(user),
                rp,
                name,
                credential,
                source,
            )

    enrolled = await asyncio.to_thread(enrol)
    if enrolled.key is None:
        return await _security_keys_page(request, enrolled.refusal, 400)
    if enrolled.recovery_codes:
        return aiohttp_jinja2.render_template(
            "recovery_codes.html", request, {"codes": enrolled.recovery_codes, "kind": "key"}
        )
    raise web.HTTPSeeOther(f"/account/security-keys?added={quote(enrolled.key.name)}")


@routes.post("/account/security-keys/{key_id:\\d+}/remove", name="security_key_remove")
@signed_in
async def security_key_remove(request: web.Request) -> web.StreamResponse:
    db = request.app[keys.DB]
    user = current_user(request)
    source = source_of(request)
    key_id = int(request.match_info["key_id"])

    def remove() -> bool:
        with db.session() as session:
            return security_keys.remove(session, session.merge(user), key_id, source) is not None

    if not await asyncio.to_thread(remove):
        raise web.HTTPNotFound()
    raise web.HTTPSeeOther("/account/security-keys")


@routes.post("/login/second-factor/key-options", name="second_factor_key_options")
@public
async def second_factor_key_options(request: web.Request) -> web.StreamResponse:
    """A challenge for ``navigator.credentials.get``, naming this account's keys."""
    user = _half_signed_in(request)
    db = request.app[keys.DB]
    rp = _relying_party(request)

    def options() -> str:
        with db.session() as session:
            return security_keys.authentication_options(
                session, session.merge(request[keys.WEB_SESSION]), session.merge(user), rp
            )

    return web.Response(text=await asyncio.to_thread(options), content_type="application/json")


@routes.post("/login/second-factor/key", name="second_factor_key")
@public
async def second_factor_key(request: web.Request) -> web.StreamResponse:
    """The key's answer, posted by the page's script. Refused as a wrong code is: it
    counts towards the address's sign-in throttle and the session's five tries."""
    form = await request.post()
    credential = str(form.get("credential", ""))[:16_384]
    next_path = _safe_next(str(form.get("next", "/")))
    guards = request.app[keys.GUARDS]
    source = source_of(request)
    if guards.sign_in.blocked(source):
        response = aiohttp_jinja2.render_template(
            "second_factor.html",
            request,
            {"next": next_path, "error": THROTTLED.format(seconds=60), "has_keys": True},
            status=429,
        )
        response.headers["Retry-After"] = str(guards.sign_in.retry_after(source))
        return response
    user = _half_signed_in(request)
    db = request.app[keys.DB]
    web_session = request[keys.WEB_SESSION]
    rp = _relying_party(request)

    def check() -> bool:
        with db.session() as session:
            return security_keys.authenticate(
                session, session.merge(web_session), session.merge(user), rp, credential, source
            )

    if await asyncio.to_thread(check):
        raise web.HTTPSeeOther(next_path)
    guards.sign_in.hit(source)
    return aiohttp_jinja2.render_template(
        "second_factor.html",
        request,
        {"next": next_path, "error": KEY_WRONG, "has_keys": True},
        status=401,
    )


KEY_WRONG = "Your security key's answer was not accepted: try again, or use a code."
