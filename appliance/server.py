"""Start-up: data dir, migrations, first admin, certificate, then serve HTTPS."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from appliance import metrics, migrate, tls
from appliance.config import Settings, SettingsError
from appliance.db import Database
from appliance.services.calls import life
from appliance.services.evidence import master_key, signing
from appliance.services.evidence.master_key import Keyring
from appliance.services.identity import accounts

if TYPE_CHECKING:
    from media.workers import WorkerPool

log = logging.getLogger("evr.server")


@dataclass
class Prepared:
    db: Database
    cert_path: Path
    key_path: Path
    fingerprint: str
    admin_password: str | None
    keyring: Keyring


def prepare(settings: Settings) -> Prepared:
    """Everything ``serve`` does before it listens; idempotent, so every start runs it."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)
    db = Database(settings.effective_database_url, checkpoint_on_commit=False)
    migrate.upgrade(db.engine)
    with db.session() as session:
        keyring = master_key.open_keyring(settings, session)
    with db.session() as session:
        admin_password = accounts.ensure_first_admin(session)
        failed = life.recover_after_crash(session, settings, keyring)
    if failed:
        log.warning("calls live at the last stop were marked failed", extra={"calls": len(failed)})
    cert_path, key_path = settings.tls_paths
    if not cert_path.exists() and not key_path.exists() and settings.tls_is_default:
        tls.make_self_signed(cert_path, key_path)
        log.info("made a self-signed certificate", extra={"cert": str(cert_path)})
    for name, path in (("tls_cert", cert_path), ("tls_key", key_path)):
        if not path.is_file():
            raise SettingsError(f"invalid setting {name}: file {path} not found")
    try:
        certificate = tls.load_certificate(cert_path)
        fingerprint = tls.fingerprint(certificate)
        metrics.TLS_EXPIRY.set(certificate.not_valid_after_utc.timestamp())
    except ValueError as exc:
        raise SettingsError(
            f"invalid setting tls_cert: {cert_path} is not a PEM certificate ({exc})"
        ) from None
    signing.ensure_signing_key(settings.effective_signing_key_file)
    return Prepared(db, cert_path, key_path, fingerprint, admin_password, keyring)


def banner(settings: Settings, prepared: Prepared, out: TextIO) -> None:
    host = "localhost" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
    print(f"EVR appliance for {settings.force_name}", file=out)
    print(f"  serving   https://{host}:{settings.port}/", file=out)
    print(f"  public    {settings.effective_public_url}", file=out)
    print(f"  metrics   https://{settings.metrics_host}:{settings.metrics_port}/metrics", file=out)
    print(f"  database  {prepared.db.engine.url.render_as_string(hide_password=True)}", file=out)
    print(f"  cert      {prepared.cert_path}", file=out)
    print(f"  SHA-256   {prepared.fingerprint}", file=out)
    if prepared.admin_password:
        print("", file=out)
        print("  First start: an admin account was created. This password is shown once:", file=out)
        print("    username  admin", file=out)
        print(f"    password  {prepared.admin_password}", file=out)
        print("  You will be asked to choose your own at first sign-in.", file=out)
    out.flush()


def serve(settings: Settings, media: WorkerPool | None = None) -> None:
    """Serve until stopped; ``media`` replaces the worker pool the settings ask for (benches).

    The web app (aiohttp, aiortc, PyAV, templates) is imported after `prepare`, so a start
    that must stop on a bad setting or master key says so at once.
    """
    from aiohttp import web

    from appliance.web import cad_listener, health
    from appliance.web.app import create_app

    prepared = prepare(settings)
    banner(settings, prepared, sys.stdout)
    app = create_app(settings, prepared.db, prepared.keyring, media)
    app.on_cleanup.append(lambda _app: _dispose(prepared.db))
    context = tls.server_context(prepared.cert_path, prepared.key_path)

    async def monitoring(_app: web.Application) -> AsyncIterator[None]:
        runner = await health.start_monitoring(settings, prepared.db, context)
        yield
        await runner.cleanup()

    async def client_certificates(_app: web.Application) -> AsyncIterator[None]:
        runner = await cad_listener.start(app, settings)
        yield
        if runner is not None:
            await runner.cleanup()

    app.cleanup_ctx.append(monitoring)
    app.cleanup_ctx.append(client_certificates)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        ssl_context=context,
        access_log=None,
        print=None,
        shutdown_timeout=5,
    )


async def _dispose(db: Database) -> None:
    db.dispose()
