"""Fixtures shared by the whole suite: settings, databases on both engines, a live server."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from _pytest.nodes import coerce_node_id
from aiohttp import web
from argon2 import PasswordHasher
from sqlalchemy.engine import make_url

from appliance import migrate
from appliance.config import Settings, load_settings
from appliance.db import Database
from appliance.services.identity import passwords
from tests.support import appliance as appliance_support
from tests.support import live_calls
from tests.support.hostile import caller_http
from tests.support.http import FormClient
from tests.support.live import LiveServer, free_port
from tests.support.postgres import Databases, PostgresCluster

BACKENDS = ("sqlite", "postgresql")
# The fixtures that put a test on an engine: each is parametrized over BACKENDS.
ENGINE_FIXTURES = ("database_url", "empty_database_url", "module_database_url")
_db_outcomes: Counter[tuple[str, str]] = Counter()


# Argon2id at its smallest cost. The product's profile takes 64 MiB and about 0.3 s a hash
# on this machine, and the in-process tests hash and check some two thousand passwords.
QUICK_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
REAL_HASHER = passwords._hasher


# The box makes a local admin enrol a second factor before anything else (on by default).
# The tests of that rule ask for it (tests/security/test_second_factor.py,
# tests/integration/test_security_keys.py); elsewhere an admin signs in by password alone.
os.environ.setdefault("EVR_LOCAL_ADMIN_TOTP_REQUIRED", "false")


@pytest.fixture(autouse=True, scope="session")
def quick_password_hashing() -> Iterator[None]:
    """Hash passwords cheaply in this process, as Django's test settings do. Every `evr`
    subprocess (the browser tests, the CLI tests) still hashes with the product's profile,
    and tests/integration/test_accounts.py holds that profile with `real_password_hashing`."""
    passwords._hasher = QUICK_HASHER
    passwords._dummy_hash.cache_clear()
    yield
    passwords._hasher = REAL_HASHER
    passwords._dummy_hash.cache_clear()


@pytest.fixture
def real_password_hashing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The product's own Argon2id profile, for the tests about it."""
    monkeypatch.setattr(passwords, "_hasher", REAL_HASHER)
    passwords._dummy_hash.cache_clear()
    yield
    passwords._dummy_hash.cache_clear()


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


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per run; each test gets a copy of it."""
    path = tmp_path_factory.mktemp("template") / "evr.db"
    database = Database(f"sqlite:///{path}")
    try:
        migrate.upgrade(database.engine)
    finally:
        database.dispose()
    assert not path.with_name("evr.db-wal").exists(), "the template's WAL was not checkpointed"
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_databases: Databases) -> Iterator[str]:
    """A PostgreSQL database migrated to head once per run, the template of each test's own."""
    url = postgres_databases.create()
    database = Database(url)
    try:
        migrate.upgrade(database.engine)
    finally:
        database.dispose()
    try:
        yield str(make_url(url).database)
    finally:
        postgres_databases.drop(url)


def _new_database(request: pytest.FixtureRequest, tmp_path: Path, migrated: bool) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "evr.db"
        if migrated:
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    databases: Databases = request.getfixturevalue("postgres_databases")
    template = request.getfixturevalue("postgres_template") if migrated else None
    url = databases.create(template=template)
    try:
        yield url
    finally:
        databases.drop(url)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database already at the head migration: a SQLite file, or a new database on
    the test PostgreSQL, each copied from a template migrated once per run (Alembic from
    nothing costs more than most tests)."""
    yield from _new_database(request, tmp_path, migrated=True)


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database, for what must migrate from nothing (`evr db upgrade`)."""
    yield from _new_database(request, tmp_path, migrated=False)


@pytest.fixture(scope="module", params=BACKENDS)
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One database at the head migration shared by a module's tests, on each engine: for a
    module whose tests only read a large dataset that one fixture builds (the evaluation's
    1,000 incidents). A test that writes takes `database_url` instead."""
    yield from _new_database(request, tmp_path_factory.mktemp("module-db"), migrated=True)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
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
    # A handler still running when the test ends gets 5 s, not aiohttp's 60 s twice over
    # (once to finish, once after its cancel): CI's test_caller_rejoin teardown sat out
    # the whole 120 s test timeout that way, with the CAD sender still retrying.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
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


@pytest.fixture
async def live_phone(live_server: LiveServer) -> AsyncIterator[aiohttp.ClientSession]:
    """The caller's phone of a call made by tests/support/live_calls.py (its device)."""
    async with caller_http(live_server, live_calls.DEVICE) as session:
        yield session


@pytest.fixture
async def live_officer(live_server: LiveServer) -> AsyncIterator[FormClient]:
    """The handler (pc1) of a call made by tests/support/live_calls.py, signed in."""
    async with live_calls.signed_in_officer(live_server) as client:
        yield client


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sqlite_only(reason): runs its database on SQLite only; the reason says why the "
        "engine is not what the test is about (docs/development.md)",
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engine",
        choices=("both", *BACKENDS),
        default="both",
        help="run the database tests on one engine only (make test-fast: sqlite)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Which engines a database test runs on: both, unless it is marked `sqlite_only` or
    `--engine` names one. A test that is neither runs twice, `[sqlite]` and `[postgresql]`."""
    engines = list(BACKENDS)
    marker = metafunc.definition.get_closest_marker("sqlite_only")
    if marker is not None:
        if not marker.kwargs.get("reason"):
            raise pytest.UsageError(f"{metafunc.definition.nodeid}: sqlite_only needs a reason=")
        engines = ["sqlite"]
    chosen = metafunc.config.getoption("engine")
    if chosen != "both":
        engines = [e for e in engines if e == chosen]
    if engines == list(BACKENDS):
        return
    for name in ENGINE_FIXTURES:
        if name in metafunc.fixturenames:
            # A parametrize mark takes precedence over the fixture's own params.
            metafunc.definition.add_marker(pytest.mark.parametrize(name, engines, indirect=True))


def _xdist_group(item: pytest.Item) -> str | None:
    """Which tests must share a worker under `make test`'s `-n` (pytest-xdist, `--dist
    loadgroup`): the provisioning tests that use the one chroot converged twice, and a
    module with a module-scoped fixture (an `evr serve` and a browser, a dataset) keeps it
    once. The provisioning tests that need no chroot (lint, vault, settings, firewall,
    Vagrant) run beside that chain, not after it: it is the suite's longest."""
    if "converged" in getattr(item, "fixturenames", ()):
        return "provisioning"
    info = getattr(item, "_fixtureinfo", None)
    definitions = info.name2fixturedefs.values() if info is not None else []
    if any(d.scope == "module" for defs in definitions for d in defs):
        return item.nodeid.split("::")[0]
    return None


def _route_to_group(item: pytest.Item, group: str) -> None:
    """pytest-xdist's `loadgroup` routes a test by an ``@group`` suffix on its node id,
    which its own hook writes to ``item._nodeid``; pytest 9.2 keeps the id in ``_id``, so
    that write is lost and every test is scheduled alone (each worker converging its own
    chroot, a module's `evr serve` started on both). Write it where pytest reads it."""
    # pytest-xdist sets the option in its workers only: a plain `pytest` run has none.
    if not getattr(item.config.option, "loadgroup", False) or not hasattr(item, "_id"):
        return
    if "@" not in item.nodeid.rpartition("]")[2]:
        item._id = coerce_node_id(f"{item.nodeid}@{group}")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Label each database test with its engine (for the summary by engine) and with the
    worker group it needs (before pytest-xdist's own hook reads the group markers)."""
    for item in items:
        params = getattr(item, "callspec", None)
        for name in ENGINE_FIXTURES:
            if params is not None and name in params.params:
                item.user_properties.append(("db_backend", params.params[name]))
        group = _xdist_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
            _route_to_group(item, group)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
        return
    backend = dict(report.user_properties).get("db_backend")
    if backend:
        _db_outcomes[(str(backend), report.outcome)] += 1


def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # the controller, or a run without -n
        shutil.rmtree(appliance_support.STALLS, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    _summarise_stalls(terminalreporter)
    if not _db_outcomes:
        return
    parts = []
    for backend in BACKENDS:
        counts = {o: n for (b, o), n in _db_outcomes.items() if b == backend}
        shown = ", ".join(f"{n} {o}" for o, n in sorted(counts.items())) or "none"
        parts.append(f"{backend}: {shown}")
    terminalreporter.write_sep("=", "database tests by engine")
    terminalreporter.write_line("; ".join(parts))


def _summarise_stalls(terminalreporter: Any) -> None:
    """Where `evr serve`'s event loop stood whenever it stalled over a second in this run
    (tests/support/appliance.py keeps them; at most the first 12 files)."""
    files = sorted(appliance_support.STALLS.glob("*.txt"))
    if not files:
        return
    terminalreporter.write_sep("=", f"evr serve's event loop stalled ({len(files)} servers)")
    for path in files[:12]:
        terminalreporter.write_line(f"--- {path.stem}")
        terminalreporter.write_line(path.read_text().rstrip())
