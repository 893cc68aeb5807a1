"""The information manager's pages: subject access (search, then a signed bundle) and
the evaluation lead's reading of survey comments. Every search, view and export is
audited by the services these call."""

from __future__ import annotations

import asyncio
import io

import aiohttp_jinja2
from aiohttp import web

from appliance.models import Role
from appliance.services.governance import comments as survey_comments_service
from appliance.services.governance import subject_access
from appliance.services.governance.subject_access import SubjectAccessError
from appliance.web import keys
from appliance.web.access import requires
from appliance.web.toolkit import actor_of

routes = web.RouteTableDef()


def _page(request: web.Request, **context: object) -> web.Response:
    values = {"found": None, "phone": "", "name": "", "error": ""} | context
    return aiohttp_jinja2.render_template(
        "governance/subject_access.html",
        request,
        values,
        status=400 if values["error"] else 200,
    )


@routes.get("/governance/subject-access", name="subject_access")
@requires(Role.INFORMATION_MANAGER)
async def subject_access_form(request: web.Request) -> web.StreamResponse:
    return _page(request)


@routes.post("/governance/subject-access", name="subject_access_search")
@requires(Role.INFORMATION_MANAGER)
async def subject_access_search(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    phone, name = str(form.get("phone", "")), str(form.get("name", ""))
    try:
        with request.app[keys.DB].session() as session:
            found = subject_access.find(session, actor_of(request), phone=phone, name=name)
    except SubjectAccessError as exc:
        return _page(request, phone=phone, name=name, error=str(exc))
    return _page(request, found=found, phone=phone, name=name)


@routes.post("/governance/subject-access/bundle", name="subject_access_bundle")
@requires(Role.INFORMATION_MANAGER)
async def subject_access_bundle(request: web.Request) -> web.StreamResponse:
    """The signed bundle of what the same search finds (searched again, both audited)."""
    form = await request.post()
    phone, name = str(form.get("phone", "")), str(form.get("name", ""))
    db, settings, keyring = (
        request.app[keys.DB],
        request.app[keys.SETTINGS],
        request.app[keys.KEYRING],
    )
    actor = actor_of(request)

    def make() -> bytes:
        out = io.BytesIO()
        with db.session() as session:
            found = subject_access.find(session, actor, phone=phone, name=name)
            subject_access.write_bundle(session, settings, keyring, actor, found, out)
        return out.getvalue()

    try:
        data = await asyncio.to_thread(make)
    except SubjectAccessError as exc:
        return _page(request, phone=phone, name=name, error=str(exc))
    return web.Response(
        body=data,
        content_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="subject-access.zip"'},
    )


@routes.get("/governance/survey-comments", name="survey_comments")
@requires(Role.EVALUATION_LEAD)
async def survey_comments(request: web.Request) -> web.StreamResponse:
    """Survey free text, for the evaluation lead only; each reading is audited."""
    with request.app[keys.DB].session() as session:
        comments = survey_comments_service.comments(session, actor_of(request))
    return aiohttp_jinja2.render_template(
        "governance/survey_comments.html", request, {"comments": comments}
    )
