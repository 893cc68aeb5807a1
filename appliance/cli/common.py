"""What every `evr` command shares: the exit codes, who the audit trail names, the database
brought to the newest schema, the master key."""

from __future__ import annotations

import argparse
import fcntl
import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

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


def _serve_lock_path(settings: Settings) -> Path:
    return settings.data_dir / "evr-serve.lock"


def hold_serve_lock(settings: Settings) -> IO[bytes] | None:
    """Mark the data dir as served by this process for as long as it lives (the kernel
    drops the lock when the process ends, however it ends). None if another process
    serves it already."""
    path = _serve_lock_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def served_now(settings: Settings) -> bool:
    """Whether an `evr serve` holds this data dir (a command that changes what the
    running server keeps in memory, such as the master key, must wait for it to stop)."""
    held = hold_serve_lock(settings)
    if held is None:
        return True
    held.close()
    return False


def refused_while_served(settings: Settings, act: str, why: str = "") -> bool:
    """True, having told the operator to stop the appliance first, when an `evr serve`
    holds this data dir; the caller then exits with ``EXIT_USAGE``."""
    if not served_now(settings):
        return False
    print(
        f"the appliance is running on this data dir{why}: stop it (systemctl stop evr), "
        f"{act}, then start it again",
        file=sys.stderr,
    )
    return True
