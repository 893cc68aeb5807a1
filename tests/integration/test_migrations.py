"""Migrations build exactly the schema the models describe, on both engines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from appliance import migrate
from appliance.db import Database


@pytest.fixture
def db(empty_database_url: str) -> Iterator[Database]:
    """Migrated here from nothing, not copied from the run's template: the migrations are
    what these tests are about."""
    database = Database(empty_database_url)
    migrate.upgrade(database.engine)
    try:
        yield database
    finally:
        database.dispose()


def test_migrated_schema_matches_the_models(db: Database) -> None:
    assert migrate.current(db.engine) == migrate.head()
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_upgrade_is_idempotent_and_downgrade_reverses_it(db: Database) -> None:
    migrate.upgrade(db.engine)
    migrate.downgrade(db.engine, "base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(db.engine)
    assert {"users", "audit_events"} <= set(inspect(db.engine).get_table_names())


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'evr.db'}")
    try:
        with db.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        db.dispose()
