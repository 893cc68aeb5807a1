"""Admin pages: users (create, roles, disable, reset password), the privileged roles
waiting for a second admin, and the SMS outbox."""

from __future__ import annotations

import asyncio

import aiohttp_jinja2
from aiohttp import web

from appliance.models import Role
from appliance.services.identity import accounts
from appliance.services.identity.accounts import AccountError
from appliance.services.outbox import messages
from appliance.web import keys
from appliance.web.access import current_user, requires
from appliance.web.toolkit import actor_of

routes = web.RouteTableDef()

NOTICES = {
    "roles": "Roles changed.",
    "roles_pending": "Roles changed; the privileged ones wait for another admin to approve.",
    "approved": "Role granted.",
    "refused": "Role refused.",
    "disabled": "Account disabled; its sessions ended.",
    "enabled": "Account enabled.",
    "resent": "Queued again.",
}


def _render_users(request: web.Request, error: str = "", status: int = 200) -> web.Response:
    with request.app[keys.DB].reader() as session:
        users = accounts.list_users(session)
        grants = accounts.pending_grants(session)
    notice = NOTICES.get(request.query.get("notice", ""), "")
    return aiohttp_jinja2.render_template(
        "admin/users.html",
        request,
        {
            "users": users,
            "grants": grants,
            "roles": list(Role),
            "privileged": accounts.PRIVILEGED,
            "me": current_user(request).username,
            "error": error,
            "notice": notice,
        },
        status=status,
    )


@routes.get("/admin/users", name="admin_users")
@requires(Role.ADMIN)
async def users(request: web.Request) -> web.StreamResponse:
    return _render_users(request)


@routes.post("/admin/users", name="admin_users_create")
@requires(Role.ADMIN)
async def create(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username = str(form.get("username", ""))
    display_name = str(form.get("display_name", ""))
    actor = actor_of(request)
    db = request.app[keys.DB]

    roles: set[Role] = set()

    def work() -> str:
        roles.update(accounts.parse_roles(str(r) for r in form.getall("roles", [])))
        made = accounts.NewPassword.of()
        with db.session() as session:
            _, password = accounts.create_user(
                session, actor, username, display_name, roles, made, hold_privileged=True
            )
            return password

    try:
        password = await asyncio.to_thread(work)
    except AccountError as exc:
        return _render_users(request, f"Not created: {exc}.", status=400)
    return aiohttp_jinja2.render_template(
        "admin/one_time_password.html",
        request,
        {
            "username": username.strip().lower(),
            "password": password,
            "created": True,
            "pending": sorted(r.value for r in roles & accounts.PRIVILEGED),
        },
    )


@routes.post("/admin/users/{username}/roles", name="admin_user_roles")
@requires(Role.ADMIN)
async def set_roles(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    try:
        roles = accounts.parse_roles(str(r) for r in form.getall("roles", []))
        with request.app[keys.DB].session() as session:
            held = accounts.set_roles(
                session,
                actor_of(request),
                request.match_info["username"],
                roles,
                hold_privileged=True,
            )
    except AccountError as exc:
        return _render_users(request, f"Roles not changed: {exc}.", status=400)
    raise web.HTTPSeeOther(f"/admin/users?notice={'roles_pending' if held else 'roles'}")


@routes.post(r"/admin/grants/{grant_id:\d+}/approve", name="admin_grant_approve")
@requires(Role.ADMIN)
async def approve_grant(request: web.Request) -> web.StreamResponse:
    """A second admin gives a privileged role another admin asked for."""
    return _decide_grant(request, approve=True)


@routes.post(r"/admin/grants/{grant_id:\d+}/refuse", name="admin_grant_refuse")
@requires(Role.ADMIN)
async def refuse_grant(request: web.Request) -> web.StreamResponse:
    return _decide_grant(request, approve=False)


def _decide_grant(request: web.Request, approve: bool) -> web.StreamResponse:
    try:
        with request.app[keys.DB].session() as session:
            accounts.decide_grant(
                session, actor_of(request), int(request.match_info["grant_id"]), approve
            )
    except AccountError as exc:
        return _render_users(request, f"Not decided: {exc}.", status=400)
    raise web.HTTPSeeOther(f"/admin/users?notice={'approved' if approve else 'refused'}")


@routes.post("/admin/users/{username}/disable", name="admin_user_disable")
@requires(Role.ADMIN)
async def disable(request: web.Request) -> web.StreamResponse:
    return _set_disabled(request, True)


@routes.post("/admin/users/{username}/enable", name="admin_user_enable")
@requires(Role.ADMIN)
async def enable(request: web.Request) -> web.StreamResponse:
    return _set_disabled(request, False)


def _set_disabled(request: web.Request, disabled: bool) -> web.StreamResponse:
    try:
        with request.app[keys.DB].session() as session:
            accounts.set_disabled(
                session, actor_of(request), request.match_info["username"], disabled
            )
    except AccountError as exc:
        return _render_users(request, f"Not changed: {exc}.", status=400)
    raise web.HTTPSeeOther(f"/admin/users?notice={'disabled' if disabled else 'enabled'}")


@routes.post("/admin/users/{username}/reset-password", name="admin_user_reset")
@requires(Role.ADMIN)
async def reset_password(request: web.Request) -> web.StreamResponse:
    actor = actor_of(request)
    username = request.match_info["username"]
    db = request.app[keys.DB]

    def work() -> str:
        made = accounts.NewPassword.of()
        with db.session() as session:
            _, password = accounts.reset_password(session, actor, username, password=made)
            return password

    try:
        password = await asyncio.to_thread(work)
    except AccountError as exc:
        return _render_users(request, f"Not reset: {exc}.", status=400)
    return aiohttp_jinja2.render_template(
        "admin/one_time_password.html",
        request,
        {"username": username, "password": password, "created": False},
    )


@routes.get("/admin/outbox", name="admin_outbox")
@requires(Role.ADMIN)
async def outbox(request: web.Request) -> web.StreamResponse:
    return _render_outbox(request)


@routes.post("/admin/outbox/{message_id:\\d+}/resend", name="admin_outbox_resend")
@requires(Role.ADMIN)
async def resend(request: web.Request) -> web.StreamResponse:
    try:
        with request.app[keys.DB].session() as session:
            message = messages.get(session, int(request.match_info["message_id"]))
            if message is None:
                raise web.HTTPNotFound()
            messages.resend(session, request.app[keys.SETTINGS], actor_of(request), message)
    except messages.MessageError as exc:
        return _render_outbox(request, f"Not queued: {exc}.", status=400)
    raise web.HTTPSeeOther("/admin/outbox?notice=resent")


def _render_outbox(request: web.Request, error: str = "", status: int = 200) -> web.Response:
    settings = request.app[keys.SETTINGS]
    with request.app[keys.DB].reader() as session:
        rows = messages.recent(session)
    return aiohttp_jinja2.render_template(
        "admin/outbox.html",
        request,
        {
            "messages": rows,
            "adapter": settings.notify_adapter,
            "error": error,
            "notice": NOTICES.get(request.query.get("notice", ""), ""),
        },
        status=status,
    )
