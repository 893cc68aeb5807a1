"""`evr serve` and `evr db`: the appliance itself and its schema."""

from __future__ import annotations

import argparse
import sys

from appliance import migrate
from appliance.cli.common import EXIT_USAGE, hold_serve_lock, refused_while_served
from appliance.config import Settings
from appliance.db import Database


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.server import serve

    settings.require_for_serve()
    lock = hold_serve_lock(settings)
    if lock is None:
        print(
            f"another evr serve is serving {settings.data_dir}: stop it first",
            file=sys.stderr,
        )
        return EXIT_USAGE
    with lock:
        serve(settings)
    return 0


def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    # A running server was written for the schema it found at its start; `evr serve`
    # migrates by itself at every start.
    if refused_while_served(settings, "upgrade", " and migrates by itself at every start"):
        return EXIT_USAGE
    db = Database(settings.effective_database_url)
    migrate.upgrade(db.engine)
    print(f"database at revision {migrate.current(db.engine)}")
    return 0


def cmd_db_current(settings: Settings, args: argparse.Namespace) -> int:
    db = Database(settings.effective_database_url)
    print(f"current {migrate.current(db.engine)} (head {migrate.head()})")
    return 0
