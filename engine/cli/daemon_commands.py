"""The daemon and its tools: run, export, forget, quarantine, outbox."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from leadrules.engine.cli.common import EXIT_OK, EXIT_USAGE, load, open_store, output


def cmd_run(args: argparse.Namespace) -> int:
    from leadrules.engine.daemon.logs import configure_logging
    from leadrules.engine.daemon.runtime import Daemon, DaemonOptions

    configure_logging()
    daemon = Daemon(
        DaemonOptions(Path(args.rules), Path(args.config), args.host, args.port, args.database_url)
    )
    ingest = daemon.settings.ingest
    print(
        f"leadrules {daemon.rules_version}: listening on http://{ingest.host}:{ingest.port}",
        file=sys.stderr,
    )
    if not daemon.write_keys():
        print(
            "no write key set (LEADRULES_WRITE_KEY): every ingest request will be refused",
            file=sys.stderr,
        )
    print(
        f"try: curl -u \"$LEADRULES_WRITE_KEY:\" -H 'Content-Type: application/json' "
        f"http://{ingest.host}:{ingest.port}/v1/track "
        '-d \'{"userId": "u-1", "event": "Demo Requested"}\'',
        file=sys.stderr,
    )
    daemon.serve()
    return EXIT_OK


def cmd_forget(args: argparse.Namespace) -> int:
    from leadrules.engine.clock import WallClock
    from leadrules.engine.daemon.privacy import forget

    erased = forget(
        open_store(args), args.prospect, WallClock(), operator=args.by, reason=args.reason
    )
    print(f"{erased.summary()}; audit #{erased.audit_id}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from leadrules.engine.clock import WallClock
    from leadrules.engine.daemon.service import Service

    if args.prospect is not None:
        return _export_prospect(args)
    rules = load(args)
    service = Service(open_store(args), rules, WallClock())
    with output(args.out) as out:
        count = service.export(out)
    print(f"{count} events exported", file=sys.stderr)
    return EXIT_OK


def _export_prospect(args: argparse.Namespace) -> int:
    from leadrules.engine.clock import WallClock
    from leadrules.engine.daemon.privacy import export

    with output(args.out) as out:
        counts = export(open_store(args), args.prospect, out, WallClock(), operator=args.by)
    print(", ".join(f"{n} {k}" for k, n in counts.items()) + " exported", file=sys.stderr)
    return EXIT_OK


def cmd_quarantine(args: argparse.Namespace) -> int:
    from leadrules.engine.daemon import quarantine
    from leadrules.engine.timefmt import format_iso

    store = open_store(args)
    ids = args.ids or None
    if args.action == "retry":
        print(f"{quarantine.retry(store, ids)} held items put back")
        return EXIT_OK
    if args.action == "discard":
        print(f"{quarantine.discard(store, ids)} held items discarded")
        return EXIT_OK
    statuses = quarantine.ALL if args.all else (quarantine.HELD,)
    for row in quarantine.listed(store, statuses, args.limit):
        due = f" due {format_iso(row.due_at)}" if row.due_at is not None else ""
        print(
            f"{row.id:>5}  {format_iso(row.created_at)}  {row.status:<9} {row.kind:<5} "
            f"{row.prospect}  {row.key}{due}\n       {row.error}"
        )
        if row.trace and args.action == "list" and ids:
            print("       " + row.trace.replace("\n", "\n       "))
    return EXIT_OK


def cmd_outbox(args: argparse.Namespace) -> int:
    from leadrules.engine.clock import WallClock
    from leadrules.engine.daemon.dispatch import drop_dead, outbox, retry_dead
    from leadrules.engine.daemon.store import DECISION_STATUSES
    from leadrules.engine.timefmt import format_iso

    if args.status is not None and args.status not in DECISION_STATUSES:
        print(
            f"leadrules outbox: --status is one of {', '.join(DECISION_STATUSES)}, "
            f"got {args.status!r}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    store = open_store(args)
    if args.action == "retry":
        print(f"{retry_dead(store, WallClock().now_us(), args.key)} dead letters queued again")
        return EXIT_OK
    if args.action == "drop":
        print(f"{drop_dead(store, args.key)} dead letters dropped")
        return EXIT_OK
    for row in outbox(store, args.status, args.limit):
        error = f"  {row.last_error}" if row.last_error else ""
        print(
            f"{format_iso(row.created_at)}  {row.status:<8} {row.attempts:>2}  {row.channel or '-':<14} "
            f"{row.action:<14} {row.prospect}  {row.key}{error}"
        )
    return EXIT_OK
