"""`evr serve` and `evr db`: the appliance itself and its schema."""

from __future__ import annotations

import argparse

from appliance import migrate
from appliance.config import Settings
from appliance.db import Database


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.server import serve

    settings.require_for_serve()
    serve(settings)
    return 0


def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    db = Database(settings.effective_database_url)
    migrate.upgrade(db.engine)
    print(f"database at revision {migrate.current(db.engine)}")
    return 0


def cmd_db_current(settings: Settings, args: argparse.Namespace) -> int:
    db = Database(settings.effective_database_url)
    print(f"current {migrate.current(db.engine)} (head {migrate.head()})")
    return 0
