"""The app on real HTTPS in the test's own event loop, and a free loopback port.

The `live_server` fixture (tests/conftest.py) builds a `LiveServer`; tests import the class
from here, never from the conftest: a test module imports only from `tests.support`.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from appliance.config import Settings
from appliance.db import Database


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """The real app on real HTTPS on 127.0.0.1, in this test's event loop."""

    def __init__(
        self, settings: Settings, db: Database, base_url: str, app: web.Application | None = None
    ) -> None:
        self.settings = settings
        self.db = db
        self.base_url = base_url
        self.app = app
        self.admin_password: str | None = None

    def url(self, path: str) -> str:
        return self.base_url + path


@asynccontextmanager
async def monitoring_listener(server: LiveServer) -> AsyncIterator[str]:
    """The monitoring listener (/metrics, /readyz) beside ``server``, as `evr serve` starts
    it, on a free loopback port of its own; yields its base URL."""
    from appliance import tls
    from appliance.web import health

    settings = server.settings
    settings.metrics_host, settings.metrics_port = "127.0.0.1", free_port()
    runner = await health.start_monitoring(
        settings, server.db, tls.server_context(*settings.tls_paths)
    )
    try:
        yield f"https://127.0.0.1:{settings.metrics_port}"
    finally:
        await runner.cleanup()
