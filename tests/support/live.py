"""The app on real HTTPS in the test's own event loop, and a free loopback port.

The `live_server` fixture (tests/conftest.py) builds a `LiveServer`; tests import the class
from here, never from the conftest: a test module imports only from `tests.support`.
"""

from __future__ import annotations

import socket

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
