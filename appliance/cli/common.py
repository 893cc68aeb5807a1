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


def open_db(settings: Settings) -> Database:
    db = Database(settings.effective_database_url)
    migrate.upgrade(db.engine)
    return db


def open_keyring(settings: Settings, db: Database) -> master_key.Keyring:
    with db.session() as session:
        return master_key.open_keyring(settings, session)
