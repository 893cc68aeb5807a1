"""Fixtures shared by the whole suite: settings, databases on both engines, a live server."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from appliance import migrate
from appliance.config import Settings, load_settings
from appliance.db import Database
from tests.support.http import FormClient
from tests.support.live import LiveServer, free_port
from tests.support.postgres import Databases, PostgresCluster

BACKENDS = ("sqlite", "postgresql")
_db_outcomes: Counter[tuple[str, str]] = Counter()


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[Databases]:
    existing = os.environ.get("EVR_TEST_POSTGRES_URL")
    if existing:
        yield Databases(existing)
        return
    cluster = PostgresCluster()
    cluster.start()
    try:
        yield Databases(cluster.admin_url)
    finally:
        cluster.stop()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new database on the test PostgreSQL."""
    request.node.user_properties.append(("db_backend", request.param))
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'evr.db'}"
        return
    databases: Databases = request.getfixturevalue("postgres_databases")
    url = databases.create()
    try:
        yield url
    finally:
        databases.drop(url)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    migrate.upgrade(database.engine)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    data_dir = tmp_path / "var"
    return load_settings(
        data_dir=data_dir,
        database_url=database_url,
        min_free_bytes=0,
        public_url="https://evr.test",
        port=free_port(),
    )


@pytest.fixture
async def live_server(settings: Settings) -> AsyncIterator[LiveServer]:
    from appliance.server import prepare
    from appliance.web.app import create_app

    prepared = await asyncio.to_thread(prepare, settings)
    app = create_app(settings, prepared.db, prepared.keyring)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(prepared.cert_path, prepared.key_path)
    site = web.TCPSite(runner, "127.0.0.1", settings.port, ssl_context=context)
    await site.start()
    server = LiveServer(settings, prepared.db, f"https://127.0.0.1:{settings.port}", app)
    server.admin_password = prepared.admin_password
    try:
        yield server
    finally:
        await runner.cleanup()
        prepared.db.dispose()


@pytest.fixture
async def caller(live_server: LiveServer) -> AsyncIterator[FormClient]:
    """A phone's browser with no session, cookies kept: the caller's side of a link."""
    client = FormClient(live_server.base_url)
    try:
        yield client
    finally:
        await client.close()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
        return
    backend = dict(report.user_properties).get("db_backend")
    if backend:
        _db_outcomes[(str(backend), report.outcome)] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _db_outcomes:
        return
    parts = []
    for backend in BACKENDS:
        counts = {o: n for (b, o), n in _db_outcomes.items() if b == backend}
        shown = ", ".join(f"{n} {o}" for o, n in sorted(counts.items())) or "none"
        parts.append(f"{backend}: {shown}")
    terminalreporter.write_sep("=", "database tests by engine")
    terminalreporter.write_line("; ".join(parts))
