"""The caller survey's pages: after the call on the call page, or from the SMS link."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from appliance.i18n import N_
from appliance.services.evaluation import survey
from appliance.services.evaluation.survey import PAGE, SMS, SurveyError, SurveyProblem
from appliance.web import keys
from appliance.web.access import public, source_of
from appliance.web.caller_links import caller_gettext, caller_link, device_hash_of, use_language

routes = web.RouteTableDef()
TITLE = N_("Feedback")
PROBLEMS = {
    SurveyProblem.UNKNOWN: (
        404,
        N_("This link does not work"),
        N_("Check that you opened the whole link."),
    ),
    SurveyProblem.EXPIRED: (
        410,
        N_("This link has expired"),
        N_("Thank you for your time all the same."),
    ),
    SurveyProblem.ANSWERED: (
        410,
        N_("Thank you"),
        N_("We already have your answers for this. There is nothing more to do."),
    ),
    SurveyProblem.NOT_YET: (
        409,
        N_("Not yet"),
        N_("The questions open once your video call has ended."),
    ),
}


def _language(request: web.Request, channel: str) -> None:
    """The survey's pages in the caller's language: by the SMS link, the language of the
    call it follows (the page's link sets its own, caller_link)."""
    code = None
    if channel == SMS:
        with request.app[keys.DB].reader() as session:
            code = survey.language_of(session, request.match_info["token"])
    use_language(request, code or request.app[keys.SETTINGS].caller_language_default)


def _problem(request: web.Request, problem: SurveyProblem) -> web.Response:
    status, title, text = PROBLEMS[problem]
    _ = caller_gettext(request)
    return aiohttp_jinja2.render_template(
        "survey/done.html",
        request,
        {"title": _(title), "text": _(text), "page_title": TITLE},
        status=status,
    )


def _form(
    request: web.Request, action: str, form: Any = None, error: str = "", status: int = 200
) -> web.Response:
    return aiohttp_jinja2.render_template(
        "survey/form.html",
        request,
        {"action": action, "form": form or {}, "error": error, "page_title": TITLE},
        status=status,
    )


def _thanks(request: web.Request) -> web.Response:
    _ = caller_gettext(request)
    return aiohttp_jinja2.render_template(
        "survey/done.html",
        request,
        {
            "title": _("Thank you"),
            "text": _("Your answers help us improve how we respond. You can close this page."),
            "page_title": TITLE,
        },
    )


async def _answer(request: web.Request, channel: str) -> web.Response:
    token = request.match_info["token"]
    action = f"/v/{token}/survey" if channel == PAGE else f"/s/{token}"
    form = await request.post()
    _language(request, channel)
    try:
        answers = survey.parse({k: str(v) for k, v in form.items()})
    except SurveyError as exc:
        if channel == PAGE:
            with request.app[keys.DB].reader() as session:
                caller_link(request, session)  # the page's language
        return _form(request, action, form, caller_gettext(request)(str(exc)), status=400)
    with request.app[keys.DB].session() as session:
        if channel == PAGE:
            caller_link(request, session)
            on_page = survey.open_on_page(session, token, device_hash_of(request))
            found = on_page if isinstance(on_page, SurveyProblem) else on_page[1]
            call = None if isinstance(on_page, SurveyProblem) else on_page[0]
        else:
            by_sms = survey.open_sms_link(session, token)
            found = by_sms if isinstance(by_sms, SurveyProblem) else by_sms[1]
            call = None
        if isinstance(found, SurveyProblem):
            result: object = found
        else:
            result = survey.answer(session, found, answers, channel, source_of(request), call=call)
    if isinstance(result, SurveyProblem):
        return _problem(request, result)
    return _thanks(request)


def _offer(request: web.Request, channel: str) -> web.Response:
    """The empty form, or why it cannot be answered."""
    token = request.match_info["token"]
    _language(request, channel)
    with request.app[keys.DB].session() as session:
        if channel == PAGE:
            caller_link(request, session)
            found: object = survey.open_on_page(session, token, device_hash_of(request))
        else:
            found = survey.open_sms_link(session, token)
    if isinstance(found, SurveyProblem):
        return _problem(request, found)
    return _form(request, f"/v/{token}/survey" if channel == PAGE else f"/s/{token}")


@routes.get("/v/{token}/survey", name="survey_after_call")
@public
async def after_call(request: web.Request) -> web.StreamResponse:
    return _offer(request, PAGE)


@routes.post("/v/{token}/survey", name="survey_after_call_answer")
@public
async def after_call_answer(request: web.Request) -> web.StreamResponse:
    return await _answer(request, PAGE)


@routes.get("/s/{token}", name="survey_link")
@public
async def by_link(request: web.Request) -> web.StreamResponse:
    return _offer(request, SMS)


@routes.post("/s/{token}", name="survey_link_answer")
@public
async def by_link_answer(request: web.Request) -> web.StreamResponse:
    return await _answer(request, SMS)
