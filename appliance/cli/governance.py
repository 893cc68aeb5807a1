"""`evr audit`, `subject-access`, `dpia` and `report`: what the force answers for."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta

from appliance.cli.common import EXIT_FAILED, EXIT_USAGE, cli_actor, open_db, open_keyring
from appliance.config import Settings
from appliance.services import audit
from appliance.services.governance import audit_search, dpia, subject_access


def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    with open_db(settings).session() as session:
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


def cmd_audit_export(settings: Settings, args: argparse.Namespace) -> int:
    query = audit_search.Query(since=args.from_day, until=args.to_day + timedelta(days=1))
    with open_db(settings).session() as session:
        text = audit_search.export_csv(session, cli_actor(), query)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
        print(f"{text.count(chr(10)) - 1} events written to {args.out}")
    return 0


def cmd_subject_access(settings: Settings, args: argparse.Namespace) -> int:
    db = open_db(settings)
    keyring = open_keyring(settings, db) if args.out else None
    try:
        with db.session() as session:
            found = subject_access.find(
                session, cli_actor(), phone=args.phone or "", name=args.name or ""
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
                        session, settings, keyring, cli_actor(), found, out
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


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.services.evaluation import measures, report

    try:
        start, end = measures.period(args.from_date, args.to_date)
    except ValueError as exc:
        print(f"evr: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with open_db(settings).reader() as session:
        gathered = measures.gather(session, start, end)
    evaluation = measures.evaluate(gathered, settings)
    for path in report.write(evaluation, args.outdir, settings.force_name):
        print(path)
    return 0
