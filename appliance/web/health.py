"""Liveness, readiness and metrics, for operations and the load balancer."""

from __future__ import annotations

import asyncio
import shutil
import tempfile

from aiohttp import web
from prometheus_client import REGISTRY
from prometheus_client.aiohttp import make_aiohttp_handler

from appliance.web import keys
from appliance.web.access import public

routes = web.RouteTableDef()


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


@routes.get("/readyz", name="readyz")
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


@routes.get("/metrics", name="metrics")
@public
async def metrics(request: web.Request) -> web.StreamResponse:
    return await _prometheus(request)
