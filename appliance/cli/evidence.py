"""`evr keys`, `evidence`, `purge`, `export`, `backup`, `restore`: kept media and its keys."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlmodel import select

from appliance.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    cli_actor,
    open_db,
    open_keyring,
    refused_while_served,
)
from appliance.config import Settings, SettingsError
from appliance.models import Incident
from appliance.services import audit
from appliance.services.evidence import backup, export, integrity, master_key, retention, signing


def cmd_keys_rotate(settings: Settings, args: argparse.Namespace) -> int:
    # The server keeps the old key in memory: what it sealed after the rotation would
    # be wrapped by a key file no longer kept, and the next start refused.
    if refused_while_served(settings, "rotate"):
        return EXIT_USAGE
    db = open_db(settings)
    keyring = open_keyring(settings, db)
    with db.session() as session:
        new = master_key.rotate(session, settings, keyring, cli_actor())
    print(f"master key rotated: {keyring.key_id} -> {new.key_id}; data keys re-wrapped")
    print(f"back up the new {settings.effective_master_key_file} now (docs/evidence.md)")
    return 0


def cmd_evidence_verify(settings: Settings, args: argparse.Namespace) -> int:
    db = open_db(settings)
    keyring = open_keyring(settings, db)
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
    # A running server with a purge interval purges on its own timer: two purges at once
    # would each delete, audit and shred the same files. A dry run changes nothing.
    interval = settings.purge_interval_minutes
    why = f" and purges by itself every {interval} minutes (--dry-run shows what is due)"
    if interval and not args.dry_run and refused_while_served(settings, "purge", why):
        return EXIT_USAGE
    db = open_db(settings)
    keyring = open_keyring(settings, db)
    with db.session() as session:
        done = retention.purge(session, settings, keyring, cli_actor(), args.dry_run)
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
    db = open_db(settings)
    keyring = open_keyring(settings, db)
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
                bundle = export.write_bundle(session, settings, keyring, cli_actor(), incident, out)
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
    db = open_db(settings)
    keyring = open_keyring(settings, db)
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
            cli_actor(),
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


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    # Replacing the database and the media under a running server would mix its
    # writes with the backup's.
    if refused_while_served(settings, "restore"):
        return EXIT_USAGE
    try:
        info = backup.restore(settings, args.src, args.identity)
    except backup.BackupError as exc:
        print(f"evr: {exc}", file=sys.stderr)
        return EXIT_FAILED
    db = open_db(settings)
    with db.session() as session:
        chain = audit.verify(session)
        try:
            keyring = master_key.open_keyring(settings, session)
        except SettingsError as exc:
            print(f"evr: restored, but {exc}", file=sys.stderr)
            return EXIT_FAILED
        audit.record(
            session,
            cli_actor(),
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
