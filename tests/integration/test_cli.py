"""The `evr` command as an operator uses it, against SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from appliance.cli.common import hold_serve_lock
from appliance.config import Settings
from appliance.db import Database
from appliance.models import Role
from appliance.services.identity import accounts
from tests.support.cli import Ran, run_evr


def evr(database_url: str, *args: str, stdin: str = "") -> Ran:
    """An `evr` command in this process (tests/support/cli.py); the help test below runs
    the real `python -m appliance` process."""
    return run_evr({"EVR_DATABASE_URL": database_url}, *args, stdin=stdin)


def test_help_lists_the_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "appliance", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for command in ("serve", "db", "user", "audit"):
        assert command in result.stdout
    user_help = subprocess.run(
        [sys.executable, "-m", "appliance", "user", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    for command in ("add", "list", "disable", "reset-password", "set-roles"):
        assert command in user_help


@pytest.mark.sqlite_only(reason="a lock on the data dir, not the database")
def test_db_upgrade_waits_for_the_running_server(empty_database_url: str, tmp_path: Path) -> None:
    """`evr db upgrade` while `evr serve` holds the data dir (its lock): refused, exit code
    2, nothing migrated (the running server was written for the schema it started on);
    once the server has stopped, the same command migrates."""
    env = {"EVR_DATABASE_URL": empty_database_url, "EVR_DATA_DIR": str(tmp_path / "data")}
    settings = Settings(database_url=empty_database_url, data_dir=tmp_path / "data")
    serving = hold_serve_lock(settings)
    assert serving is not None
    with serving:
        refused = run_evr(env, "db", "upgrade")
    assert refused.returncode == 2
    assert "migrates by itself at every start" in refused.stderr
    assert "current None" in run_evr(env, "db", "current").stdout
    upgraded = run_evr(env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "current None" not in run_evr(env, "db", "current").stdout


def test_user_lifecycle_from_the_command_line(empty_database_url: str) -> None:
    database_url = empty_database_url
    assert evr(database_url, "db", "upgrade").returncode == 0
    added = evr(
        database_url,
        "user",
        "add",
        "pc42",
        "--name",
        "Pat Handler",
        "--role",
        "handler",
        "--role",
        "supervisor",
    )
    assert added.returncode == 0, added.stderr
    assert "one-time password (shown once):" in added.stdout

    listed = evr(database_url, "user", "list")
    assert "pc42" in listed.stdout and "handler,supervisor" in listed.stdout

    roles = evr(database_url, "user", "set-roles", "pc42", "auditor")
    assert roles.returncode == 0
    bad_role = evr(database_url, "user", "set-roles", "pc42", "sergeant")
    assert bad_role.returncode == 1 and "unknown role 'sergeant'" in bad_role.stderr
    assert evr(database_url, "user", "disable", "pc42").returncode == 0
    reset = evr(database_url, "user", "reset-password", "pc42")
    assert reset.returncode == 0 and "one-time password for pc42" in reset.stdout
    missing = evr(database_url, "user", "disable", "nobody")
    assert missing.returncode == 1 and "no user named 'nobody'" in missing.stderr

    database = Database(database_url)
    try:
        with database.session() as session:
            user = accounts.require(session, "pc42")
            assert user.disabled and user.must_change_password
            assert accounts.roles_of(session, user.id) == {Role.AUDITOR}
    finally:
        database.dispose()
    verify = evr(database_url, "audit", "verify")
    assert verify.returncode == 0 and "4 events verified" in verify.stdout


def test_password_from_stdin_must_meet_the_policy(database_url: str) -> None:
    short = evr(
        database_url,
        "user",
        "add",
        "pc43",
        "--role",
        "handler",
        "--password-stdin",
        stdin="short\n",
    )
    assert short.returncode == 1 and "at least 12 characters" in short.stderr
    ok = evr(
        database_url,
        "user",
        "add",
        "pc43",
        "--role",
        "handler",
        "--password-stdin",
        stdin="a perfectly fine passphrase\n",
    )
    assert ok.returncode == 0 and "one-time password" not in ok.stdout
