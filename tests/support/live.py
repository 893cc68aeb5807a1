"""The app on real HTTPS in the test's own event loop, and a free loopback port.

The `live_server` fixture (tests/conftest.py) builds a `LiveServer`; tests import the class
from here, never from the conftest: a test module imports only from `tests.support`.
"""

from __future__ import annotations

import random
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

from appliance.config import Settings
from appliance.db import Database


def _ephemeral_ports() -> range:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing is bound to right now, chosen at random below
    the kernel's ephemeral range. A port the kernel hands out itself (bind to 0) is one it
    may hand to another socket's outgoing connection a moment later, before the server
    that asked for it binds it: on a busy CI box a live server then found its port taken
    ("address already in use")."""
    ephemeral = _ephemeral_ports()
    candidates = [p for p in range(10000, ephemeral.start) if p not in ephemeral]
    for port in random.sample(candidates, 50):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port on 127.0.0.1 below the ephemeral range")


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
