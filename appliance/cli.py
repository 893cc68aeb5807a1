"""The ``evr`` command: serve, db, user, apikey, audit, report, keys, evidence, purge,
export, backup, restore, subject-access, dpia."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select

from appliance import logs, migrate
from appliance.config import Settings, SettingsError, load_settings
from appliance.db import Database
from appliance.models import Incident
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.evidence import backup, export, integrity, master_key, retention, signing
from appliance.services.governance import audit_search, dpia, subject_access
from appliance.services.identity import accounts, api_keys, second_factor
from appliance.services.identity.accounts import AccountError

EXIT_USAGE = 2
EXIT_FAILED = 1


def _cli_actor() -> Actor:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = str(os.getuid())
    return Actor(f"cli:{name}", "cli")


def _db(settings: Settings) -> Database:
    db = Database(settings.effective_database_url)
    migrate.upgrade(db.engine)
    return db


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


def cmd_user_add(settings: Settings, args: argparse.Namespace) -> int:
    roles = accounts.parse_roles(args.role or [])
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    with _db(settings).session() as session:
        user, password = accounts.create_user(
            session,
            _cli_actor(),
            args.username,
            args.name or args.username,
            roles,
            password,
            accounts.PasswordPolicy.from_settings(settings),
        )
    print(f"created {user.username} with roles {', '.join(sorted(r.value for r in roles))}")
    if not args.password_stdin:
        print(f"one-time password (shown once): {password}")
    return 0


def cmd_user_list(settings: Settings, args: argparse.Namespace) -> int:
    with _db(settings).session() as session:
        views = accounts.list_users(session)
    print(f"{'USERNAME':20} {'STATE':9} {'ROLES':40} NAME")
    for view in views:
        user = view.user
        state = "disabled" if user.disabled else "active"
        roles = ",".join(sorted(r.value for r in view.roles))
        print(f"{user.username:20} {state:9} {roles:40} {user.display_name}")
    return 0


def cmd_user_disable(settings: Settings, args: argparse.Namespace) -> int:
    with _db(settings).session() as session:
        accounts.set_disabled(session, _cli_actor(), args.username, not args.enable)
    print(f"{args.username} {'enabled' if args.enable else 'disabled'}")
    return 0


def cmd_user_reset_password(settings: Settings, args: argparse.Namespace) -> int:
    with _db(settings).session() as session:
        user, password = accounts.reset_password(
            session, _cli_actor(), args.username, privileged_ok=True
        )
    print(f"one-time password for {user.username} (shown once): {password}")
    return 0


def cmd_user_reset_factor(settings: Settings, args: argparse.Namespace) -> int:
    with _db(settings).session() as session:
        user = second_factor.reset(session, _cli_actor(), args.username)
    print(f"{user.username}'s authenticator and recovery codes are removed; sessions ended")
    return 0


def cmd_user_set_roles(settings: Settings, args: argparse.Namespace) -> int:
    roles = accounts.parse_roles(args.roles)
    with _db(settings).session() as session:
        accounts.set_roles(session, _cli_actor(), args.username, roles)
    print(f"{args.username} now has roles {', '.join(sorted(r.value for r in roles))}")
    return 0


def cmd_apikey_create(settings: Settings, args: argparse.Namespace) -> int:
    with _db(settings).session() as session:
        api_key, key = api_keys.create(session, _cli_actor(), args.name)
    print(f"API key {api_key.name} (shown once; send it as 'Authorization: Bearer <key>'):")
    print(key)
    return 0


def cmd_apikey_list(settings: Settings, args: argparse.Namespace) -> int:
    with _db(settings).session() as session:
        keys = api_keys.list_keys(session)
    print(f"{'NAME':24} {'PREFIX':14} {'STATE':8} LAST USED")
    for key in keys:
        state = "revoked" if key.revoked_at else "active"
        used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never"
        print(f"{key.name:24} {key.prefix:14} {state:8} {used}")
    return 0


def cmd_apikey_revoke(settings: Settings, args: argparse.Namespace) -> int:
    with _db(settings).session() as session:
        api_keys.revoke(session, _cli_actor(), args.name)
    print(f"API key {args.name} revoked")
    return 0


def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    with _db(settings).session() as session:
        result = audit.verify(session)
    if result.ok:
        print(f"audit chain OK: {result.checked} events verified")
        return 0
    where = f"event #{result.broken_seq}" + (
        f" (row id {result.broken_id})" if result.broken_id else ""
    )
    print(
        f"audit chain BROKEN at {where}: {result.reason}; "
        f"{result.checked} events before it verified",
        file=sys.stderr,
    )
    return EXIT_FAILED


def _day(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from None


def cmd_audit_export(settings: Settings, args: argparse.Namespace) -> int:
    query = audit_search.Query(since=args.from_day, until=args.to_day + timedelta(days=1))
    with _db(settings).session() as session:
        text = audit_search.export_csv(session, _cli_actor(), query)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
        print(f"{text.count(chr(10)) - 1} events written to {args.out}")
    return 0


def cmd_subject_access(settings: Settings, args: argparse.Namespace) -> int:
    db = _db(settings)
    keyring = _keyring(settings, db) if args.out else None
    try:
        with db.session() as session:
            found = subject_access.find(
                session, _cli_actor(), phone=args.phone or "", name=args.name or ""
            )
            for incident in found.incidents:
                print(
                    f"incident {incident.cad_reference} ({incident.status}) "
                    f"{incident.received_at:%Y-%m-%d}: {incident.caller_name}"
                )
            print(", ".join(f"{n} {what}" for what, n in found.counts().items()))
            for line in found.third_parties:
                print(f"third party: {line}")
            if args.out is not None and keyring is not None:
                with args.out.open("xb") as out:
                    made = subject_access.write_bundle(
                        session, settings, keyring, _cli_actor(), found, out
                    )
                print(f"bundle {args.out}: {made.files} files, SHA256SUMS {made.sums_sha256}")
    except subject_access.SubjectAccessError as exc:
        print(f"evr: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FileExistsError:
        print(f"evr: {args.out} exists; the bundle goes to a new file", file=sys.stderr)
        return EXIT_FAILED
    return 0


def access_rules() -> list[dpia.Rule]:
    """Every route of the web app and who may reach it, read from the handlers' marks."""
    import importlib
    import pkgutil

    from aiohttp import web

    import appliance.web
    from appliance.web.access import access_of

    rules = []
    for info in pkgutil.walk_packages(appliance.web.__path__, "appliance.web."):
        module = importlib.import_module(info.name)
        table = getattr(module, "routes", None)
        if not isinstance(table, web.RouteTableDef):
            continue
        for route in table:
            if not isinstance(route, web.RouteDef):
                continue
            who = access_of(route.handler)
            if isinstance(who, frozenset):
                who = ", ".join(sorted(role.value for role in who))
            rules.append(dpia.Rule(route.method, route.path, str(who)))
    return sorted(rules, key=lambda r: (r.path, r.method))


def cmd_dpia(settings: Settings, args: argparse.Namespace) -> int:
    for path in dpia.write(settings, access_rules(), args.outdir):
        print(f"wrote {path}")
    return 0


def _keyring(settings: Settings, db: Database) -> master_key.Keyring:
    with db.session() as session:
        return master_key.open_keyring(settings, session)


def cmd_keys_rotate(settings: Settings, args: argparse.Namespace) -> int:
    db = _db(settings)
    keyring = _keyring(settings, db)
    with db.session() as session:
        new = master_key.rotate(session, settings, keyring, _cli_actor())
    print(f"master key rotated: {keyring.key_id} -> {new.key_id}; data keys re-wrapped")
    print(f"back up the new {settings.effective_master_key_file} now (docs/evidence.md)")
    return 0


def cmd_evidence_verify(settings: Settings, args: argparse.Namespace) -> int:
    db = _db(settings)
    keyring = _keyring(settings, db)
    with db.session() as session:
        report = integrity.verify(session, keyring)
    for problem in report.problems:
        print(f"FAILED {problem}", file=sys.stderr)
    if report.chain.ok:
        print(f"audit chain OK: {report.chain.checked} events verified")
    else:
        print(
            f"audit chain BROKEN at event #{report.chain.broken_seq}: {report.chain.reason}",
            file=sys.stderr,
        )
    print(f"{report.checked - len(report.problems)} of {report.checked} evidence files verified")
    return 0 if report.ok else EXIT_FAILED


def cmd_purge(settings: Settings, args: argparse.Namespace) -> int:
    db = _db(settings)
    keyring = _keyring(settings, db)
    with db.session() as session:
        done = retention.purge(session, settings, keyring, _cli_actor(), args.dry_run)
        verb = "would delete" if args.dry_run else "deleted"
        for file in done.delete:
            print(f"{verb} {retention.describe(file)}")
        for file in done.review_due:
            print(f"review due (evidential, kept) {retention.describe(file)}")
        marked = "would mark evidential" if args.dry_run else "marked evidential"
        for decision in done.mark:
            print(f"{marked} {retention.describe(decision.file)}: {decision.rule}")
        if args.dry_run:
            for decision in done.decisions:
                print(f"  {decision.action.value}: {retention.describe(decision.file)}")
                print(f"    rule: {decision.rule}")
        minimised = "would minimise" if args.dry_run else "minimised"
        for incident, kind in done.records:
            print(f"{minimised} {kind} of incident {incident.cad_reference}")
        for incident in done.minimise:
            closed = f"{incident.closed_at:%Y-%m-%d}"
            print(f"{minimised} incident {incident.cad_reference} (closed {closed})")
    total = f"{len(done.delete)} files " + ("to delete (dry run)" if args.dry_run else "deleted")
    print(f"{total}; {len(done.review_due)} evidential files due for review")
    return 0


def cmd_export_bundle(settings: Settings, args: argparse.Namespace) -> int:
    db = _db(settings)
    keyring = _keyring(settings, db)
    signing.ensure_signing_key(settings.effective_signing_key_file)
    with db.session() as session:
        incident = session.exec(
            select(Incident).where(Incident.cad_reference == args.incident)
        ).first()
        if incident is None:
            print(f"evr: no incident with CAD reference {args.incident!r}", file=sys.stderr)
            return EXIT_FAILED
        try:
            with args.out.open("xb") as out:
                bundle = export.write_bundle(
                    session, settings, keyring, _cli_actor(), incident, out
                )
        except FileExistsError:
            print(f"evr: {args.out} exists; not overwritten", file=sys.stderr)
            return EXIT_FAILED
        except export.ExportError as exc:
            args.out.unlink(missing_ok=True)
            print(f"evr: not exported: {exc}", file=sys.stderr)
            return EXIT_FAILED
    print(f"exported {bundle.files} files to {args.out}; SHA256SUMS {bundle.sums_sha256}")
    return 0


def cmd_export_verify(settings: Settings, args: argparse.Namespace) -> int:
    key = args.public_key.read_bytes() if args.public_key else None
    if key is None and settings.effective_signing_key_file.exists():
        key = signing.public_pem(settings.effective_signing_key_file)
    problems = export.verify_bundle(args.bundle, key)
    for problem in problems:
        print(f"FAILED {problem}", file=sys.stderr)
    if problems:
        return EXIT_FAILED
    print(f"{args.bundle}: signature and every file verified")
    return 0


def cmd_export_public_key(settings: Settings, args: argparse.Namespace) -> int:
    signing.ensure_signing_key(settings.effective_signing_key_file)
    sys.stdout.write(signing.public_pem(settings.effective_signing_key_file).decode())
    return 0


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    db = _db(settings)
    keyring = _keyring(settings, db)
    removed: list[Path] = []
    try:
        if args.keep is None:
            dest = args.dest
            made = backup.make(settings, db, dest, keyring.key_id)
        else:
            kept = backup.make_kept(settings, db, args.dest, keyring.key_id, args.keep)
            dest, made, removed = kept.path, kept.made, kept.removed
    except backup.BackupError as exc:
        print(f"evr: backup not made: {exc}", file=sys.stderr)
        return EXIT_FAILED
    with db.session() as session:
        audit.record(
            session,
            _cli_actor(),
            "backup.made",
            object_type="backup",
            object_id=str(dest)[:128],
            detail={
                "media_files": made.files,
                "database": made.database,
                "removed": [path.name for path in removed],
            },
        )
    print(f"backup in {dest}: {made.database} database, {made.files} sealed media files")
    for path in removed:
        print(f"removed the older backup {path} (--keep {args.keep})")
    print(f"the master key ({settings.effective_master_key_file}) is NOT in it: keep it apart")
    return 0


def _at_least_one(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    try:
        info = backup.restore(settings, args.src, args.identity)
    except backup.BackupError as exc:
        print(f"evr: {exc}", file=sys.stderr)
        return EXIT_FAILED
    db = _db(settings)
    with db.session() as session:
        chain = audit.verify(session)
        try:
            keyring = master_key.open_keyring(settings, session)
        except SettingsError as exc:
            print(f"evr: restored, but {exc}", file=sys.stderr)
            return EXIT_FAILED
        audit.record(
            session,
            _cli_actor(),
            "backup.restored",
            object_type="backup",
            object_id=str(args.src)[:128],
            detail={
                "made_at": info["made_at"],
                "master_key_id": keyring.key_id,
                "reshredded": info["reshredded"],
            },
        )
    print(f"restored the backup made {info['made_at']} ({info['media_files']} media files)")
    if info["reshredded"]:
        print(f"{info['reshredded']} files deleted since the backup made tombstones again")
    print(f"audit chain {'OK' if chain.ok else 'BROKEN'}: {chain.checked} events verified")
    return 0 if chain.ok else EXIT_FAILED


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.services.evaluation import measures, report

    try:
        start, end = measures.period(args.from_date, args.to_date)
    except ValueError as exc:
        print(f"evr: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with _db(settings).reader() as session:
        gathered = measures.gather(session, start, end)
    evaluation = measures.evaluate(gathered, settings)
    for path in report.write(evaluation, args.outdir, settings.force_name):
        print(path)
    return 0


Command = Callable[[Settings, argparse.Namespace], int]


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
    serve.set_defaults(func=cmd_serve)

    db = commands.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser("upgrade", help="apply migrations up to the newest").set_defaults(
        func=cmd_db_upgrade
    )
    db.add_parser("current", help="show the schema revision").set_defaults(func=cmd_db_current)

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
    add.set_defaults(func=cmd_user_add)
    user.add_parser("list", help="list accounts").set_defaults(func=cmd_user_list)
    disable = user.add_parser("disable", help="disable an account and end its sessions")
    disable.add_argument("username")
    disable.add_argument("--enable", action="store_true", help="enable it again instead")
    disable.set_defaults(func=cmd_user_disable)
    reset = user.add_parser("reset-password", help="set a one-time password and unlock")
    reset.add_argument("username")
    reset.set_defaults(func=cmd_user_reset_password)
    reset_factor = user.add_parser(
        "reset-factor", help="remove an account's authenticator app (a lost phone)"
    )
    reset_factor.add_argument("username")
    reset_factor.set_defaults(func=cmd_user_reset_factor)
    set_roles = user.add_parser(
        "set-roles", help="replace an account's roles at once (no second admin: break-glass)"
    )
    set_roles.add_argument("username")
    set_roles.add_argument("roles", nargs="+")
    set_roles.set_defaults(func=cmd_user_set_roles)

    apikey = commands.add_parser("apikey", help="API keys for integrations (CAD)").add_subparsers(
        dest="apikey_command", required=True
    )
    create = apikey.add_parser("create", help="make a key; prints it once")
    create.add_argument("name", help="the integration, e.g. cad")
    create.set_defaults(func=cmd_apikey_create)
    apikey.add_parser("list", help="list keys (never the keys themselves)").set_defaults(
        func=cmd_apikey_list
    )
    revoke = apikey.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("name")
    revoke.set_defaults(func=cmd_apikey_revoke)

    audit_parser = commands.add_parser("audit", help="the audit trail").add_subparsers(
        dest="audit_command", required=True
    )
    audit_parser.add_parser(
        "verify", help="check the hash chain; names the first broken event"
    ).set_defaults(func=cmd_audit_verify)
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
    audit_export.set_defaults(func=cmd_audit_export)

    subject = commands.add_parser(
        "subject-access", help="everything held about one person (audited); --out: a bundle"
    )
    who = subject.add_mutually_exclusive_group(required=True)
    who.add_argument("--phone", help="their phone number, in any format")
    who.add_argument("--name", help="their name, or part of it (any case)")
    subject.add_argument("--out", type=Path, help="write a signed bundle zip (must not exist)")
    subject.set_defaults(func=cmd_subject_access)

    dpia_parser = commands.add_parser(
        "dpia", help="write the records-of-processing and DPIA annex (Markdown and HTML)"
    )
    dpia_parser.add_argument("outdir", type=Path, help="folder to write into (made if missing)")
    dpia_parser.set_defaults(func=cmd_dpia)

    keys_parser = commands.add_parser("keys", help="the master key").add_subparsers(
        dest="keys_command", required=True
    )
    keys_parser.add_parser(
        "rotate", help="make a new master key and re-wrap every data key (media untouched)"
    ).set_defaults(func=cmd_keys_rotate)

    evidence_parser = commands.add_parser("evidence", help="kept evidence").add_subparsers(
        dest="evidence_command", required=True
    )
    evidence_parser.add_parser(
        "verify", help="check every file against its hash, and the audit chain; names failures"
    ).set_defaults(func=cmd_evidence_verify)

    purge = commands.add_parser("purge", help="delete evidence past retention (audited)")
    purge.add_argument(
        "--dry-run", action="store_true", help="list what would be deleted; delete nothing"
    )
    purge.set_defaults(func=cmd_purge)

    export_parser = commands.add_parser("export", help="export bundles").add_subparsers(
        dest="export_command", required=True
    )
    bundle = export_parser.add_parser("bundle", help="an incident's signed export zip")
    bundle.add_argument("incident", help="the incident's CAD reference")
    bundle.add_argument("out", type=Path, help="the zip to write (must not exist)")
    bundle.set_defaults(func=cmd_export_bundle)
    verify = export_parser.add_parser("verify", help="check a bundle's signature and files")
    verify.add_argument("bundle", type=Path)
    verify.add_argument(
        "--public-key", type=Path, help="the sending box's public key (default: this box's)"
    )
    verify.set_defaults(func=cmd_export_verify)
    export_parser.add_parser(
        "public-key", help="print this box's Ed25519 public key (PEM)"
    ).set_defaults(func=cmd_export_public_key)

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
    backup_parser.set_defaults(func=cmd_backup)
    restore = commands.add_parser("restore", help="a backup onto a fresh box")
    restore.add_argument("src", type=Path, help="a directory made by `evr backup`")
    restore.add_argument(
        "--identity",
        type=Path,
        help="the age secret key file, when the backup was encrypted (backup_recipient)",
    )
    restore.set_defaults(func=cmd_restore)

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
    report_parser.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        print(f"evr: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logs.configure(settings.log_format, settings.log_level)
    func: Command = args.func
    try:
        return func(settings, args)
    except SettingsError as exc:
        print(f"evr: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (AccountError, api_keys.ApiKeyError) as exc:
        print(f"evr: {exc}", file=sys.stderr)
        return EXIT_FAILED
