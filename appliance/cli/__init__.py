"""The ``evr`` command: serve, db, user, apikey, audit, report, keys, evidence, purge,
export, backup, restore, subject-access, dpia.

The parser is here; each command lives in the module for its domain and is imported only
when it runs, so `evr user add` does not load the evidence, export and report code (an
operator's command, and every test that runs one, starts faster)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from appliance import logs
from appliance.cli.common import EXIT_FAILED, EXIT_USAGE, Command, close_opened
from appliance.config import SettingsError, load_settings


def _day(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from None


def _at_least_one(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evr", description="Enhanced Video Response appliance.")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML settings file (default: /etc/evr/evr.toml when present)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the appliance (HTTPS, signalling, media)")
    serve.set_defaults(run="box:cmd_serve")

    db = commands.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser("upgrade", help="apply migrations up to the newest").set_defaults(
        run="box:cmd_db_upgrade"
    )
    db.add_parser("current", help="show the schema revision").set_defaults(run="box:cmd_db_current")

    user = commands.add_parser("user", help="manage accounts").add_subparsers(
        dest="user_command", required=True
    )
    add = user.add_parser("add", help="create an account; prints a one-time password")
    add.add_argument("username")
    add.add_argument("--name", help="display name (default: the username)")
    add.add_argument(
        "--role",
        action="append",
        required=True,
        help="handler, supervisor, evidence_officer, auditor or admin; repeatable",
    )
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the initial password from standard input",
    )
    add.add_argument(
        "--break-glass",
        action="store_true",
        help="may sign in with its password when single sign-on is on",
    )
    add.set_defaults(run="identity:cmd_user_add")
    user.add_parser("list", help="list accounts").set_defaults(run="identity:cmd_user_list")
    disable = user.add_parser("disable", help="disable an account and end its sessions")
    disable.add_argument("username")
    disable.add_argument("--enable", action="store_true", help="enable it again instead")
    disable.set_defaults(run="identity:cmd_user_disable")
    reset = user.add_parser("reset-password", help="set a one-time password and unlock")
    reset.add_argument("username")
    reset.set_defaults(run="identity:cmd_user_reset_password")
    reset_factor = user.add_parser(
        "reset-factor",
        help="remove an account's second factors: its authenticator app and security keys "
        "(a lost phone or key)",
    )
    reset_factor.add_argument("username")
    reset_factor.set_defaults(run="identity:cmd_user_reset_factor")
    break_glass = user.add_parser(
        "break-glass",
        help="mark a box account as break-glass: its password works when single sign-on is on",
    )
    break_glass.add_argument("username")
    break_glass.add_argument("--off", action="store_true", help="take the mark away instead")
    break_glass.set_defaults(run="identity:cmd_user_break_glass")
    set_roles = user.add_parser(
        "set-roles", help="replace an account's roles at once (no second admin: break-glass)"
    )
    set_roles.add_argument("username")
    set_roles.add_argument("roles", nargs="+")
    set_roles.set_defaults(run="identity:cmd_user_set_roles")

    apikey = commands.add_parser("apikey", help="API keys for integrations (CAD)").add_subparsers(
        dest="apikey_command", required=True
    )
    create = apikey.add_parser("create", help="make a key; prints it once")
    create.add_argument("name", help="the integration, e.g. cad")
    create.set_defaults(run="identity:cmd_apikey_create")
    apikey.add_parser("list", help="list keys (never the keys themselves)").set_defaults(
        run="identity:cmd_apikey_list"
    )
    revoke = apikey.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("name")
    revoke.set_defaults(run="identity:cmd_apikey_revoke")

    audit_parser = commands.add_parser("audit", help="the audit trail").add_subparsers(
        dest="audit_command", required=True
    )
    audit_parser.add_parser(
        "verify", help="check the hash chain; names the first broken event"
    ).set_defaults(run="governance:cmd_audit_verify")
    audit_export = audit_parser.add_parser(
        "export", help="the events of a period as CSV (the export is audited)"
    )
    audit_export.add_argument(
        "--from", dest="from_day", type=_day, required=True, help="first day, YYYY-MM-DD (UTC)"
    )
    audit_export.add_argument(
        "--to", dest="to_day", type=_day, required=True, help="last day included (UTC)"
    )
    audit_export.add_argument("--out", type=Path, help="the CSV file (default: stdout)")
    audit_export.set_defaults(run="governance:cmd_audit_export")

    subject = commands.add_parser(
        "subject-access", help="everything held about one person (audited); --out: a bundle"
    )
    who = subject.add_mutually_exclusive_group(required=True)
    who.add_argument("--phone", help="their phone number, in any format")
    who.add_argument("--name", help="their name, or part of it (any case)")
    subject.add_argument("--out", type=Path, help="write a signed bundle zip (must not exist)")
    subject.set_defaults(run="governance:cmd_subject_access")

    dpia_parser = commands.add_parser(
        "dpia", help="write the records-of-processing and DPIA annex (Markdown and HTML)"
    )
    dpia_parser.add_argument("outdir", type=Path, help="folder to write into (made if missing)")
    dpia_parser.set_defaults(run="governance:cmd_dpia")

    keys_parser = commands.add_parser("keys", help="the master key").add_subparsers(
        dest="keys_command", required=True
    )
    keys_parser.add_parser(
        "rotate", help="make a new master key and re-wrap every data key (media untouched)"
    ).set_defaults(run="evidence:cmd_keys_rotate")

    evidence_parser = commands.add_parser("evidence", help="kept evidence").add_subparsers(
        dest="evidence_command", required=True
    )
    evidence_parser.add_parser(
        "verify", help="check every file against its hash, and the audit chain; names failures"
    ).set_defaults(run="evidence:cmd_evidence_verify")

    purge = commands.add_parser("purge", help="delete evidence past retention (audited)")
    purge.add_argument(
        "--dry-run", action="store_true", help="list what would be deleted; delete nothing"
    )
    purge.set_defaults(run="evidence:cmd_purge")

    export_parser = commands.add_parser("export", help="export bundles").add_subparsers(
        dest="export_command", required=True
    )
    bundle = export_parser.add_parser("bundle", help="an incident's signed export zip")
    bundle.add_argument("incident", help="the incident's CAD reference")
    bundle.add_argument("out", type=Path, help="the zip to write (must not exist)")
    bundle.set_defaults(run="evidence:cmd_export_bundle")
    verify = export_parser.add_parser("verify", help="check a bundle's signature and files")
    verify.add_argument("bundle", type=Path)
    verify.add_argument(
        "--public-key", type=Path, help="the sending box's public key (default: this box's)"
    )
    verify.set_defaults(run="evidence:cmd_export_verify")
    export_parser.add_parser(
        "public-key", help="print this box's Ed25519 public key (PEM)"
    ).set_defaults(run="evidence:cmd_export_public_key")

    backup_parser = commands.add_parser("backup", help="database and sealed media to DEST")
    backup_parser.add_argument(
        "dest",
        type=Path,
        help="a new (or empty) directory; with --keep, the directory that holds the backups",
    )
    backup_parser.add_argument(
        "--keep",
        type=_at_least_one,
        metavar="N",
        help="make DEST/evr-<UTC time> and remove all but the newest N backups in DEST",
    )
    backup_parser.set_defaults(run="evidence:cmd_backup")
    restore = commands.add_parser("restore", help="a backup onto a fresh box")
    restore.add_argument("src", type=Path, help="a directory made by `evr backup`")
    restore.add_argument(
        "--identity",
        type=Path,
        help="the age secret key file, when the backup was encrypted (backup_recipient)",
    )
    restore.set_defaults(run="evidence:cmd_restore")

    report_parser = commands.add_parser(
        "report", help="write the evaluation report (HTML with charts, and CSV files)"
    )
    report_parser.add_argument(
        "--from", dest="from_date", required=True, help="first day, YYYY-MM-DD (UTC)"
    )
    report_parser.add_argument(
        "--to", dest="to_date", required=True, help="last day included, YYYY-MM-DD (UTC)"
    )
    report_parser.add_argument("outdir", type=Path, help="folder to write into (made if missing)")
    report_parser.set_defaults(run="governance:cmd_report")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        print(f"evr: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logs.configure(settings.log_format, settings.log_level)
    module_name, name = args.run.split(":")
    module = importlib.import_module(f"appliance.cli.{module_name}")
    command: Command = getattr(module, name)
    failures: tuple[type[Exception], ...] = getattr(module, "FAILURES", ())
    try:
        return command(settings, args)
    except SettingsError as exc:
        print(f"evr: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except failures as exc:
        print(f"evr: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        close_opened()
