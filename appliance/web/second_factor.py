"""The second factor: the code or security key owed after a password, and enrolling an
authenticator app or a security key on the account's own pages.

A wrong code and a refused key are one kind of failure: each counts towards the
address's sign-in throttle, as a wrong password does (``_answer_owed_factor``).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web
from sqlmodel import Session

from appliance.models import User, WebSession
from appliance.services.identity import accounts, second_factor, security_keys
from appliance.services.identity.accounts import AccountError
from appliance.web import keys
from appliance.web.access import (
    SIGN_IN_THROTTLED,
    current_user,
    public,
    safe_next,
    signed_in,
    source_of,
)

routes = web.RouteTableDef()


CODE_WRONG = "That code is not right, or was used already: try the next one."
KEY_WRONG = "Your security key's answer was not accepted: try again, or use a code."


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
        {"next": safe_next(request.query.get("next")), "has_keys": _has_keys(request, user)},
    )


@routes.post("/login/second-factor", name="second_factor_submit")
@public
async def second_factor_submit(request: web.Request) -> web.StreamResponse:
    """The code from the authenticator app, or a recovery code."""
    form = await request.post()
    code = str(form.get("code", ""))[:32]
    source = source_of(request)

    def verify(session: Session, web_session: WebSession, user: User) -> bool:
        return second_factor.verify(session, web_session, user, code, source)

    return await _answer_owed_factor(request, str(form.get("next", "/")), verify, CODE_WRONG)


async def _answer_owed_factor(
    request: web.Request,
    next_value: str,
    verify: Callable[[Session, WebSession, User], bool],
    wrong: str,
) -> web.StreamResponse:
    """Check the code or key's answer for the half-signed-in account, through the
    sign-in throttle: on to ``next`` when it holds, the form again with ``wrong`` if not."""
    next_path = safe_next(next_value)
    guards = request.app[keys.GUARDS]
    source = source_of(request)
    user = _half_signed_in(request)
    if guards.sign_in.blocked(source):
        response = aiohttp_jinja2.render_template(
            "second_factor.html",
            request,
            {
                "next": next_path,
                "error": SIGN_IN_THROTTLED.format(seconds=60),
                "has_keys": _has_keys(request, user),
            },
            status=429,
        )
        response.headers["Retry-After"] = str(guards.sign_in.retry_after(source))
        return response
    db = request.app[keys.DB]
    web_session = request[keys.WEB_SESSION]

    def check() -> bool:
        with db.session() as session:
            return verify(session, session.merge(web_session), session.merge(user))

    if await asyncio.to_thread(check):
        raise web.HTTPSeeOther(next_path)
    guards.sign_in.hit(source)
    return aiohttp_jinja2.render_template(
        "second_factor.html",
        request,
        {"next": next_path, "error": wrong, "has_keys": _has_keys(request, user)},
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
    rp = _relying_party(request)
    source = source_of(request)

    def verify(session: Session, web_session: WebSession, user: User) -> bool:
        return security_keys.authenticate(session, web_session, user, rp, credential, source)

    return await _answer_owed_factor(request, str(form.get("next", "/")), verify, KEY_WRONG)
