"""The signed-in start page and the auditor's view of the audit trail."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from appliance.models import AuditEvent, Role
from appliance.services import audit
from appliance.services.evidence import custody
from appliance.services.governance import audit_search
from appliance.services.identity import accounts
from appliance.services.intake import incidents, queue
from appliance.services.outbox import cad, messages
from appliance.web import keys
from appliance.web.access import current_roles, current_user, requires, signed_in
from appliance.web.toolkit import actor_of

routes = web.RouteTableDef()

NOTICES = {"password_changed": "Password changed."}


def _counts(request: web.Request) -> dict[str, int]:
    """The numbers on the home page's tiles, only those this user's roles have a tile
    for: each one COUNT in one read-only transaction (never the writer's lock)."""
    roles = set(current_roles(request))
    user = current_user(request)
    settings = request.app[keys.SETTINGS]
    supervisor = Role.SUPERVISOR in roles
    hidden = () if {Role.RVR_OFFICER, Role.SUPERVISOR} & roles else tuple(settings.rvr_categories)
    counts: dict[str, int] = {}
    with request.app[keys.DB].reader() as session:
        if {Role.HANDLER, Role.SUPERVISOR} & roles:
            counts["waiting"] = queue.count_waiting_callers(
                session, None if supervisor else user.id, hidden
            )
            counts["untaken"] = incidents.count_open(session, None)
        if Role.HANDLER in roles:
            counts["mine"] = incidents.count_open(session, user.id)
        if {Role.RVR_OFFICER, Role.SUPERVISOR} & roles:
            counts["rvr"] = queue.count_rvr_queue(session, settings)
        if Role.EVIDENCE_OFFICER in roles:
            counts["reviews_due"], counts["legal_holds"] = custody.counts(session)
        if Role.ADMIN in roles:
            counts["grants"] = accounts.count_pending_grants(session)
            counts["sms_failed"] = messages.count_failed(session)
            counts["cad_failed"] = cad.counts(session).get("failed", 0)
    return counts


@routes.get("/", name="home")
@signed_in
async def home(request: web.Request) -> web.StreamResponse:
    """Tiles that lead somewhere: each with the count that says whether to go there."""
    return aiohttp_jinja2.render_template(
        "home.html",
        request,
        {
            "notice": NOTICES.get(request.query.get("notice", ""), ""),
            "counts": _counts(request),
        },
    )


AUDIT_READERS = (Role.AUDITOR, Role.INFORMATION_MANAGER)


def _query(request: web.Request) -> audit_search.Query:
    """The search in the page's query string; a bad date is a 400."""

    def day(name: str, shift: int = 0) -> datetime | None:
        text = request.query.get(name, "").strip()
        if not text:
            return None
        try:
            return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC) + timedelta(shift)
        except ValueError:
            raise web.HTTPBadRequest(text=f"{name}: a day as YYYY-MM-DD") from None

    return audit_search.Query(
        actor=request.query.get("actor", "").strip(),
        action=request.query.get("action", "").strip(),
        object_type=request.query.get("object_type", "").strip(),
        object_id=request.query.get("object_id", "").strip(),
        since=day("from"),
        until=day("to", 1),
    )


@routes.get("/audit", name="audit")
@requires(*AUDIT_READERS)
async def audit_trail(request: web.Request) -> web.StreamResponse:
    """Searched by actor, action, object and time; the search itself is audited."""
    db = request.app[keys.DB]
    query = _query(request)
    check = request.query.get("verify") == "1"
    actor = actor_of(request)

    def read() -> tuple[list[AuditEvent], audit.VerifyResult | None]:
        with db.session() as session:
            found = audit_search.search(session, actor, query)
            return found, audit.verify(session) if check else None

    events, result = await asyncio.to_thread(read)
    return aiohttp_jinja2.render_template(
        "audit.html",
        request,
        {
            "events": events,
            "result": result,
            "query": request.query,
            "csv_query": urlencode({k: v for k, v in request.query.items() if k != "verify"}),
        },
    )


@routes.get("/audit.csv", name="audit_csv")
@requires(*AUDIT_READERS)
async def audit_csv(request: web.Request) -> web.StreamResponse:
    """Every event the search finds, oldest first, as CSV (the export is audited)."""
    db = request.app[keys.DB]
    query = _query(request)
    actor = actor_of(request)

    def export() -> str:
        with db.session() as session:
            return audit_search.export_csv(session, actor, query)

    text = await asyncio.to_thread(export)
    return web.Response(
        text=text,
        content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )
