"""Wires the aiohttp application: templates, middlewares, routes, static files."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from appliance import i18n, metrics, watchdog
from appliance.config import Settings
from appliance.db import Database
from appliance.live.hub import CallHub
from appliance.notify.cad import CadSender
from appliance.notify.dispatcher import Dispatcher
from appliance.oidc import RelyingParty
from appliance.purger import Purger
from appliance.services.evidence import master_key
from appliance.services.evidence.custody import ReadLedger
from appliance.services.evidence.master_key import Keyring
from appliance.services.identity.throttle import Guards
from appliance.services.intake.incidents import national_format
from appliance.services.outbox import cad, messages
from appliance.services.record.statements import TYPED_CONFIRMATION
from appliance.sms import length as sms_length
from appliance.web import (
    auth,
    caller_links,
    files,
    health,
    keys,
    middleware,
    second_factor,
    toolkit,
)
from appliance.web.admin import cad as admin_cad
from appliance.web.admin import users as admin_users
from appliance.web.api import incidents as api_incidents
from appliance.web.caller import accessibility, call, collect, safety, survey
from appliance.web.caller import statement as caller_statement
from appliance.web.staff import (
    appointments,
    board,
    console,
    evidence,
    governance,
    guests,
    home,
    incidents,
    officer,
    report,
    rvr,
    statements,
    trial,
    viewers,
)
from media.workers import WorkerPool

log = logging.getLogger("evr.web")

PACKAGE = Path(__file__).resolve().parent.parent
# A form body larger than this is refused before it is read (413).
MAX_REQUEST_BYTES = 1024 * 1024
CHECKPOINT_EVERY_S = 5.0


async def _template_context(request: web.Request) -> dict[str, Any]:
    return {
        "force_name": request.app[keys.SETTINGS].force_name,
        "caller_language_default": request.app[keys.SETTINGS].caller_language_default,
        "password_min_length": request.app[keys.SETTINGS].password_min_length,
        "refresh_seconds": request.app[keys.SETTINGS].staff_refresh_seconds,
        "current_user": request.get(keys.USER),
        "current_roles": request.get(keys.ROLES, frozenset()),
        "csrf_token": request.get(keys.CSRF, ""),
        "csrf_field": keys.CSRF_FIELD,
        **safety.template_context(request),
        **i18n.page_context(request.get(keys.LANGUAGE)),
    }


def _free_bytes(path: Path) -> float:
    try:
        return float(shutil.disk_usage(path).free)
    except OSError:
        return float("nan")


@contextlib.asynccontextmanager
async def _flushing(
    flush: Callable[[bool], object], every_s: float, what: str
) -> AsyncIterator[None]:
    """Run ``flush(False)`` in a thread every ``every_s`` while the app lives (a failure
    is logged and tried again), then ``flush(True)`` once it stops: counts kept in memory
    between writes, and none lost at a clean stop."""

    async def forever() -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await asyncio.to_thread(flush, False)
            except Exception:
                log.exception("writing %s failed; it is tried again", what)

    task = asyncio.get_running_loop().create_task(forever())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.to_thread(flush, True)


async def _checkpointer(app: web.Application) -> AsyncIterator[None]:
    """Fold SQLite's WAL into the database every few seconds, in a thread, when the
    database leaves that to us (db.py says why), and once more at the end."""
    db = app[keys.DB]
    if not db.checkpoints_owed:
        yield
        return
    async with _flushing(lambda _everything: db.checkpoint(), CHECKPOINT_EVERY_S, "the WAL"):
        yield


async def _refusal_flusher(app: web.Application) -> AsyncIterator[None]:
    """Write the refusal tally's closed windows every minute, and all of it at the end."""
    db, tally = app[keys.DB], app[keys.GUARDS].tally

    def flush(everything: bool) -> None:
        if tally.pending():
            with db.session() as session:
                tally.flush(session, everything)

    async with _flushing(flush, tally.window_s / 2, "the refusal tally"):
        yield
    app[keys.GUARDS].password_checks.shutdown(wait=False, cancel_futures=True)


async def _read_flusher(app: web.Application) -> AsyncIterator[None]:
    """Write the evidence reads whose audit window has closed every minute, and all of
    them at the end (custody.ReadLedger)."""
    db, reads = app[keys.DB], app[keys.READS]

    def flush(everything: bool) -> None:
        if reads.pending():
            with db.session() as session:
                reads.flush(session, everything)

    async with _flushing(flush, min(reads.window_s / 2, 60.0), "the evidence reads"):
        yield


def create_app(
    settings: Settings,
    db: Database,
    keyring: Keyring | None = None,
    media: WorkerPool | None = None,
) -> web.Application:
    """``keyring`` comes from start-up (server.prepare); tests may leave it to be opened
    here. ``media`` replaces the worker pool the settings ask for."""
    if keyring is None:
        with db.session() as session:
            keyring = master_key.open_keyring(settings, session)
    app = web.Application(
        middlewares=[middleware.observe, middleware.authenticate],
        client_max_size=MAX_REQUEST_BYTES,
    )
    app[keys.SETTINGS] = settings
    app[keys.DB] = db
    if media is None and settings.media_workers > 0:
        media = WorkerPool(settings.media_workers, on_restart=metrics.MEDIA_WORKER_RESTARTS.inc)
    app[keys.KEYRING] = keyring
    app[keys.HUB] = hub = CallHub(settings, db, keyring, media)
    app[keys.GUARDS] = Guards.from_settings(settings)
    app[keys.SHOWN_LINKS] = {}
    if settings.oidc_issuer is not None:
        app[keys.OIDC] = RelyingParty(settings)
    app.cleanup_ctx.append(watchdog.watching)
    app.cleanup_ctx.append(_checkpointer)
    app.cleanup_ctx.append(_refusal_flusher)
    app[keys.READS] = ReadLedger()
    app.cleanup_ctx.append(_read_flusher)
    templates = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(PACKAGE / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        context_processors=[_template_context],
    )
    # Jinja filters every page may use.
    templates.filters.update(
        national_phone=national_format,
        uk_time=toolkit.uk_time,
        plain_event=toolkit.plain_event,
        evidence_label=files.evidence_label,
        media_label=files.media_label,
        sms_length=sms_length,
        public_link=caller_links.public_link,
    )
    i18n.install(templates)
    templates.globals["script_messages"] = i18n.script_messages
    # The words a caller ticks to sign by typing, the same words the PDF quotes.
    templates.globals["typed_confirmation"] = TYPED_CONFIRMATION
    app.on_response_prepare.append(middleware.security_headers)
    app.on_response_prepare.append(health.server_header)
    for module in (
        auth,
        second_factor,
        home,
        admin_users,
        admin_cad,
        health,
        incidents,
        officer,
        statements,
        appointments,
        console,
        guests,
        viewers,
        call,
        safety,
        caller_statement,
        accessibility,
        collect,
        api_incidents,
        board,
        evidence,
        rvr,
        survey,
        report,
        trial,
        governance,
    ):
        app.router.add_routes(module.routes)
    app.on_startup.append(lambda _app: hub.sampler.start())
    app.on_shutdown.append(lambda _app: hub.close_all())
    app.on_cleanup.append(lambda _app: hub.sampler.stop())
    if media is not None:
        app.on_cleanup.append(lambda _app: media.stop())
    dispatcher = Dispatcher.from_settings(settings, db)
    db.add_waker(messages.OUTBOX, dispatcher.poke)
    app.on_startup.append(lambda _app: dispatcher.start())
    app.on_cleanup.append(lambda _app: dispatcher.stop())
    purger = Purger(settings, db, keyring)
    app.on_startup.append(lambda _app: purger.start())
    app.on_cleanup.append(lambda _app: purger.stop())
    sender = CadSender.from_settings(settings, db)
    if sender is not None:
        db.add_waker(cad.OUTBOX, sender.poke)
        app.on_startup.append(lambda _app: sender.start())
        app.on_cleanup.append(lambda _app: sender.stop())
    metrics.QUEUE_TARGET.set(settings.queue_target_seconds)
    metrics.STORAGE_FREE.set_function(lambda: _free_bytes(settings.data_dir))
    app.router.add_static("/static", PACKAGE / "static", name="static", append_version=True)
    # The same files for the caller's pages, sent no-store: nothing stays on their phone.
    app.router.add_static(
        toolkit.ASSETS_PREFIX,
        PACKAGE / "static",
        name=toolkit.ASSETS_ROUTE,
        append_version=True,
    )
    return app
