"""The caller's side of the witness statement: read it, ask for changes, sign it.

The caller signs by drawing (``signature``, a PNG data URL) or by their typed name
alone (``typed: true`` with ``confirmed: true``, the ticked confirmation: WCAG 2.5.7
asks for a way that needs no dragging). JSON over the caller's own link, only from the
phone that agreed to the call (its device cookie), with the page's CSRF token, while
the call is live or for ``statement_sign_hours`` after it ended. Signing twice is
refused and the first signature stands.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from appliance.i18n import N_
from appliance.models import Call
from appliance.services.calls import invites
from appliance.services.record import statements
from appliance.services.record.statements import StatementConflict, StatementError, StatementNotKept
from appliance.web import keys
from appliance.web.access import public, source_of
from appliance.web.caller_links import caller_gettext, caller_link, device_hash_of
from appliance.web.statement_views import caller_safe, caller_view, officer_view

routes = web.RouteTableDef()
PNG_DATA_URL = "data:image/png;base64,"


def _call(request: web.Request, session: Any) -> Call:
    call = invites.call_after(
        session,
        caller_link(request, session),
        device_hash_of(request),
        request.app[keys.SETTINGS].statement_sign_hours,
    )
    if call is None:
        raise web.HTTPForbidden(text="This link cannot show a statement on this phone.")
    return call


def _refused(request: web.Request, message: str, status: int = 409) -> web.Response:
    """The refusal in the caller's language (its message is in the catalogue)."""
    return web.json_response({"error": caller_gettext(request)(message)}, status=status)


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="send JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="send a JSON object")
    return body


@routes.get("/v/{token}/statement/sign", name="caller_statement_page")
@public
async def page(request: web.Request) -> web.StreamResponse:
    """The statement alone, for a caller who comes back to their link after the call."""
    with request.app[keys.DB].session() as session:
        _call(request, session)
    return aiohttp_jinja2.render_template(
        "caller/statement.html",
        request,
        {"token": request.match_info["token"], "page_title": "Your statement"},
    )


@routes.get("/v/{token}/statement", name="caller_statement")
@public
async def show(request: web.Request) -> web.StreamResponse:
    with request.app[keys.DB].session() as session:
        statement = statements.for_caller(session, _call(request, session))
        view = caller_safe(caller_view(statement)) if statement else None
    return web.json_response({"statement": view}, headers={"Cache-Control": "no-store"})


@routes.post(r"/v/{token}/statement/{statement_id:\d+}/changes", name="caller_statement_changes")
@public
async def changes(request: web.Request) -> web.StreamResponse:
    body = await _json(request)
    text = body.get("text")
    if not isinstance(text, str):
        return _refused(request, N_("say what should change"), 400)
    try:
        with request.app[keys.DB].session() as session:
            call = _call(request, session)
            statement = statements.request_changes(
                session, call, int(request.match_info["statement_id"]), text, source_of(request)
            )
            view, public_id = officer_view(statement), call.public_id
    except StatementError as exc:
        return _refused(request, str(exc), 409 if isinstance(exc, StatementConflict) else 400)
    await request.app[keys.HUB].notify(
        public_id, {"type": "statement", "statement": view}, roles=("handler",)
    )
    return web.json_response({"statement": caller_safe(view)})


@routes.post(r"/v/{token}/statement/{statement_id:\d+}/sign", name="caller_statement_sign")
@public
async def sign(request: web.Request) -> web.StreamResponse:
    body = await _json(request)
    name, signature = body.get("name"), body.get("signature")
    if not isinstance(name, str):
        return _refused(request, N_("send your typed name"), 400)
    png: bytes | None = None
    if body.get("typed") is True:
        confirmed = body.get("confirmed") is True
    elif isinstance(signature, str):
        confirmed = False
        if not signature.startswith(PNG_DATA_URL):
            return _refused(request, N_("the signature must be a PNG image"), 400)
        try:
            png = base64.b64decode(signature[len(PNG_DATA_URL) :], validate=True)
        except (binascii.Error, ValueError):
            return _refused(request, N_("the signature could not be read"), 400)
    else:
        return _refused(request, N_("send your drawn signature, or sign by your typed name"), 400)
    settings = request.app[keys.SETTINGS]
    statement_id = int(request.match_info["statement_id"])
    db, keyring, source = request.app[keys.DB], request.app[keys.KEYRING], source_of(request)

    def sign_it() -> tuple[dict[str, Any], str]:
        """In a thread: the image check, the PDF and the sealing are CPU work."""
        with db.session() as session:
            call = _call(request, session)
            statement = statements.sign(
                session,
                settings,
                keyring,
                call,
                statement_id,
                name,
                png,
                source,
                typed_confirmed=confirmed,
            )
            return officer_view(statement), call.public_id

    try:
        view, public_id = await asyncio.to_thread(sign_it)
    except StatementNotKept as exc:
        return _refused(request, str(exc), 503)
    except StatementError as exc:
        return _refused(request, str(exc), 409 if isinstance(exc, StatementConflict) else 400)
    await request.app[keys.HUB].notify(public_id, {"type": "statement", "statement": view})
    return web.json_response({"statement": caller_safe(view)})
