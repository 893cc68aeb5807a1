"""What every `evr` command shares: the exit codes, who the audit trail names, the database
brought to the newest schema, the master key."""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import Callable

from appliance import migrate
from appliance.config import Settings
from appliance.db import Database
from appliance.services.audit import Actor
from appliance.services.evidence import master_key

EXIT_USAGE = 2
EXIT_FAILED = 1

Command = Callable[[Settings, argparse.Namespace], int]


def cli_actor() -> Actor:
    """The operator at the shell, as the audit trail names them."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = str(os.getuid())
    return Actor(f"cli:{name}", "cli")


_opened: list[Database] = []


def open_db(settings: Settings) -> Database:
    """The database at the newest schema, closed by `main` when the command returns.

    Closed there rather than by each command, so that a command run in-process (the tests,
    `evr shell`) leaves no pooled connection behind to hold a PostgreSQL database open.
    """
    db = Database(settings.effective_database_url)
    _opened.append(db)
    migrate.upgrade(db.engine)
    return db


def close_opened() -> None:
    while _opened:
        _opened.pop().dispose()


def open_keyring(settings: Settings, db: Database) -> master_key.Keyring:
    with db.session() as session:
        return master_key.open_keyring(settings, session)
