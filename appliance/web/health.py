"""Liveness, readiness and metrics, for operations and the load balancer.

Only ``/healthz`` (alive, nothing more) is on the callers' port. ``/readyz`` (which names
what is failing, and how much disk is free) and ``/metrics`` (call counts, queue waits,
routes) are served by a listener of their own, ``metrics_host:metrics_port``, which the
firewall opens to the monitoring network only: Prometheus scrapes it with no secret to
manage, and nobody on the internet learns how busy the box is or when its disk fills.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import tempfile

from aiohttp import web, web_response
from prometheus_client import REGISTRY
from prometheus_client.aiohttp import make_aiohttp_handler

from appliance.config import Settings
from appliance.db import Database
from appliance.web import keys
from appliance.web.access import public

routes = web.RouteTableDef()
monitoring_routes = web.RouteTableDef()
SERVER = "EVR"
"""The ``Server`` header on every response: aiohttp's default names its version and
Python's, which tells an attacker which advisories to try."""
# A request aiohttp's parser rejects gets its 400 before any app hook runs, with the
# header taken from this module global; the hook below covers every other response.
web_response.SERVER_SOFTWARE = SERVER  # type: ignore[attr-defined]


@routes.get("/healthz", name="healthz")
@public
async def healthz(request: web.Request) -> web.StreamResponse:
    """The process is alive and its event loop answers."""
    return web.json_response({"status": "ok"})


def _readiness(request: web.Request) -> dict[str, dict[str, object]]:
    settings = request.app[keys.SETTINGS]
    checks: dict[str, dict[str, object]] = {}
    try:
        request.app[keys.DB].ping()
        checks["database"] = {"ok": True}
    except Exception as exc:
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    try:
        with tempfile.NamedTemporaryFile(dir=settings.data_dir, prefix=".readyz-") as probe:
            probe.write(b"ok")
            probe.flush()
        checks["data_dir_writable"] = {"ok": True}
    except OSError as exc:
        checks["data_dir_writable"] = {"ok": False, "error": exc.strerror or type(exc).__name__}
    try:
        free = shutil.disk_usage(settings.data_dir).free
        checks["disk_space"] = {
            "ok": free >= settings.min_free_bytes,
            "free_bytes": free,
            "min_free_bytes": settings.min_free_bytes,
        }
    except OSError as exc:
        checks["disk_space"] = {"ok": False, "error": exc.strerror or type(exc).__name__}
    return checks


@monitoring_routes.get("/readyz", name="readyz")
@public
async def readyz(request: web.Request) -> web.StreamResponse:
    """Ready to take calls: database reachable, data dir writable, enough free space."""
    checks = await asyncio.to_thread(_readiness, request)
    ready = all(check["ok"] for check in checks.values())
    return web.json_response(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status=200 if ready else 503,
    )


_prometheus = make_aiohttp_handler(REGISTRY, disable_compression=True)


@monitoring_routes.get("/metrics", name="metrics")
@public
async def metrics(request: web.Request) -> web.StreamResponse:
    return await _prometheus(request)


async def server_header(_request: web.Request, response: web.StreamResponse) -> None:
    """An ``on_response_prepare`` hook: aiohttp only fills ``Server`` in when it is unset."""
    response.headers["Server"] = SERVER


def monitoring_app(settings: Settings, db: Database) -> web.Application:
    """The monitoring listener's app: ``/readyz`` and ``/metrics``, nothing else."""
    app = web.Application()
    app[keys.SETTINGS] = settings
    app[keys.DB] = db
    app.on_response_prepare.append(server_header)
    app.router.add_routes(monitoring_routes)
    return app


async def start_monitoring(
    settings: Settings, db: Database, ssl_context: ssl.SSLContext
) -> web.AppRunner:
    """Serve the monitoring app on ``metrics_host:metrics_port``; the caller cleans it up."""
    runner = web.AppRunner(monitoring_app(settings, db), access_log=None)
    await runner.setup()
    site = web.TCPSite(
        runner, settings.metrics_host, settings.metrics_port, ssl_context=ssl_context
    )
    await site.start()
    return runner
