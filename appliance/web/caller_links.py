"""The caller's link resolved once per request: its call or its problem page, the page's
language and look, and the device it is bound to."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from urllib.parse import urlencode

import aiohttp_jinja2
import jinja2
from aiohttp import web
from sqlmodel import Session

from appliance import i18n
from appliance.i18n import N_
from appliance.models import Call
from appliance.services.calls import invites, life
from appliance.services.calls.invites import LOCATION, UPLOAD, VIDEO, CallerLink, LinkProblem
from appliance.services.intake.appointments import london_label
from appliance.services.record import statements
from appliance.services.rvr import track
from appliance.web import keys
from appliance.web.access import source_of

PROBLEMS = {
    LinkProblem.UNKNOWN: (
        404,
        N_("This link does not work"),
        N_("Check that you opened the whole link from the message."),
    ),
    LinkProblem.EXPIRED: (
        410,
        N_("This link has expired"),
        N_("Links only work for a short time. Call us again if you still need help."),
    ),
    LinkProblem.REVOKED: (
        410,
        N_("This link is no longer in use"),
        N_("The officer cancelled this video call. They may send you a new link."),
    ),
    LinkProblem.FINISHED: (
        410,
        N_("This video call has finished"),
        N_("Thank you. If you need us again, please call."),
    ),
    LinkProblem.OTHER_DEVICE: (
        409,
        N_("This link is open on another phone"),
        N_(
            "A video call can only use one phone at a time. Use the phone "
            "you started on, or ask the officer for a new link."
        ),
    ),
    LinkProblem.TOO_EARLY: (
        409,
        N_("Your video call has not started yet"),
        N_("This link works from {opens} (UK time). Please open it again then."),
    ),
}


# Wording for upload and location links where the video call's would mislead.
COLLECTION_PROBLEMS = {
    LinkProblem.REVOKED: (
        410,
        N_("This link is no longer in use"),
        N_("The officer cancelled this link. They may send you a new one."),
    ),
    LinkProblem.FINISHED: (
        410,
        N_("This link has been used"),
        N_("Thank you: what you sent has reached us. If you need us again, please call."),
    ),
    LinkProblem.OTHER_DEVICE: (
        409,
        N_("This link is open on another phone"),
        N_(
            "This link works on one phone only. Use the phone you started on, or ask the "
            "officer for a new link."
        ),
    ),
}


TITLES = {
    VIDEO: N_("Video call"),
    UPLOAD: N_("Send photos and videos"),
    LOCATION: N_("Share where you are"),
}


def open_for(request: web.Request) -> tuple[Call | LinkProblem, CallerLink]:
    """The link's call (or its problem) and what the link is; notes the page's look."""
    with request.app[keys.DB].session() as session:
        link = caller_link(request, session)
        result = invites.open_link(session, link, device_hash_of(request), source_of(request))
    return result, link


def problem_page(request: web.Request, problem: LinkProblem, link: CallerLink) -> web.Response:
    """A plain page saying why the link does not work (called after any session closed)."""
    kind = link.kind
    if problem is LinkProblem.FINISHED and kind == VIDEO and _statement_waiting(request, link):
        raise web.HTTPSeeOther(f"/v/{link.token}/statement/sign")
    status, title, text = PROBLEMS[problem]
    if kind != VIDEO:
        status, title, text = COLLECTION_PROBLEMS.get(problem, (status, title, text))
    _ = caller_gettext(request)
    title, text = _(title), _(text)
    if problem is LinkProblem.TOO_EARLY:
        opens_at = link.opens_at
        text = text.format(
            opens=london_label(opens_at, request.get(keys.LANGUAGE, i18n.SOURCE))
            if opens_at
            else _("shortly before")
        )
    rejoin = 0
    if problem is LinkProblem.FINISHED and link.call is not None and link.invite is not None:
        rejoin = life.rejoin_seconds_left(link.call, link.invite, device_hash_of(request))
    return aiohttp_jinja2.render_template(
        "caller/problem.html",
        request,
        {
            "title": title,
            "text": text,
            "page_title": TITLES.get(kind, TITLES[VIDEO]),
            "token": link.token,
            "rejoin_seconds": rejoin,
        },
        status=status,
    )


def rejoin_refused_page(request: web.Request, link: CallerLink) -> web.Response:
    """Why "Rejoin the call" did not work: the link was withdrawn, or the time is up."""
    _ = caller_gettext(request)
    if link.invite is not None and link.invite.revoked_at is not None:
        status, title, text = PROBLEMS[LinkProblem.REVOKED]
        title, text = _(title), _(text)
    else:
        status, title = 410, _("You can no longer rejoin this call")
        text = (
            _(
                "The time to rejoin has passed, or the call was ended for you. "
                "If you still need help, ask for a new link."
            )
            if request.get(keys.NEUTRAL_LOOK)
            else _(
                "The time to rejoin has passed, or the call was ended for you. "
                "If you still need us, the officer can send you a new link."
            )
        )
    return aiohttp_jinja2.render_template(
        "caller/problem.html",
        request,
        {"title": title, "text": text, "page_title": TITLES[VIDEO], "token": link.token},
        status=status,
    )


def _statement_waiting(request: web.Request, link: CallerLink) -> bool:
    """After the call, this phone still has a statement to read and sign."""
    with request.app[keys.DB].reader() as session:
        call = invites.call_after(
            session,
            link,
            device_hash_of(request),
            request.app[keys.SETTINGS].statement_sign_hours,
        )
        statement = statements.for_caller(session, call) if call else None
        return statement is not None and statement.state == "sent"


def caller_link(request: web.Request, session: Session) -> CallerLink:
    """The link the route names, looked up once; decides the page's look from it:
    neutral for RVR, and for a link we cannot place (a mistyped RVR link must not show
    the force's name either)."""
    link = invites.find_link(session, request.match_info["token"])
    request[keys.NEUTRAL_LOOK] = link.incident is None or track.is_rvr(
        request.app[keys.SETTINGS], link.incident
    )
    use_language(
        request,
        link.invite.language
        if link.invite is not None
        else request.app[keys.SETTINGS].caller_language_default,
    )
    if link.invite is not None:  # the page offers the other languages (caller/base.html)
        request[aiohttp_jinja2.REQUEST_CONTEXT_KEY]["language_switch"] = [
            (code, i18n.LANGUAGES[code]) for code in i18n.OFFERED if code != link.invite.language
        ]
        request[aiohttp_jinja2.REQUEST_CONTEXT_KEY]["page_path"] = request.path
    return link


def use_language(request: web.Request, code: str) -> None:
    """Write this request's caller page, and what handlers say on it, in ``code``. The
    template context was made before the handler ran (aiohttp-jinja2's processors run as
    middleware), so the language's part of it is replaced here."""
    request[keys.LANGUAGE] = i18n.language(code).code
    context = request.setdefault(aiohttp_jinja2.REQUEST_CONTEXT_KEY, {})
    context.update(i18n.page_context(code))


def use_asked_language(request: web.Request) -> None:
    """A page anyone may open from a caller's page (the privacy notice, the accessibility
    statement) is in the language its link asks for (``?lang=``, written by
    :func:`public_link`), else in the box's default; it links the other offered ones.
    Call it after the page's look is set: the links keep it."""
    default = request.app[keys.SETTINGS].caller_language_default
    asked = request.query.get("lang", "")
    code = asked if asked in i18n.LANGUAGES else default
    use_language(request, code)
    look = {"look": "neutral"} if request.get(keys.NEUTRAL_LOOK, False) else {}
    links = []
    for other in i18n.OFFERED:
        if other != code:
            query = urlencode(look | ({} if other == default else {"lang": other}))
            links.append(
                (i18n.LANGUAGES[other], f"{request.path}?{query}" if query else request.path)
            )
    request[aiohttp_jinja2.REQUEST_CONTEXT_KEY]["language_links"] = links


def caller_gettext(request: web.Request) -> Callable[[str], str]:
    """``_`` for text a handler writes for the caller, in the caller's page's language."""
    return i18n.translator(request.get(keys.LANGUAGE))


def device_hash_of(request: web.Request) -> str | None:
    token = request.cookies.get(keys.CALLER_DEVICE_COOKIE)
    return hashlib.sha256(token.encode()).hexdigest() if token else None


@jinja2.pass_context
def public_link(context: jinja2.runtime.Context, path: str) -> str:
    """A caller page's link to a page anyone may open, in the caller page's look and
    language (read back by :func:`use_asked_language`); bare where both are the default."""
    query = {"look": "neutral"} if context.get("neutral_look") else {}
    if context.get("language", i18n.SOURCE) != context.get("caller_language_default"):
        query["lang"] = context.get("language", i18n.SOURCE)
    return f"{path}?{urlencode(query)}" if query else path
