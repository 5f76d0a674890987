"""The `leadrules` command line's arguments: one subcommand per task (docs/cli.md)."""

from __future__ import annotations

import argparse

from leadrules.engine.cli.common import iso_time, rule_args, worker_count
from leadrules.engine.replay import backtest_command, report_command
from leadrules.engine.replay.dedupe import DEFAULT_WINDOW, parse_window


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leadrules", description="Behaviour-based lead scoring and nurture rules engine."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser("check", help="validate rule files, templates and channels")
    rule_args(check)

    replay = sub.add_parser("replay", help="dry-run the rules over historical events")
    replay.add_argument(
        "files", nargs="+", metavar="FILE", help="JSON Lines (.gz allowed, - for stdin)"
    )
    rule_args(replay)
    replay.add_argument(
        "--until", type=iso_time, metavar="TIME", help="advance time to TIME at the end"
    )
    replay.add_argument(
        "--out", default="-", metavar="FILE", help="decisions (JSON Lines; default stdout)"
    )
    replay.add_argument("--matcher", choices=("python", "durable"), default="python")
    replay.add_argument(
        "--order",
        choices=("timestamp", "received"),
        default="timestamp",
        help="timestamp: what the rules would have done (default); received: what the daemon "
        "did, in the order it received the events (`receivedAt`, written by export)",
    )
    replay.add_argument("--strict", action="store_true", help="stop at the first rejected line")
    replay.add_argument("--quiet", action="store_true", help="no summary on stderr")
    replay.add_argument(
        "--workers",
        type=worker_count,
        default=0,
        metavar="N",
        help="processes evaluating prospects (default: every core); the output is the same "
        "for any N. --order received, --strict and --render run in one process",
    )
    replay.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="evaluate the partitions on the Dask scheduler at ADDRESS (tcp://host:8786); "
        "every worker must read the FILE paths (docs/scale.md)",
    )
    replay.add_argument(
        "--dedupe-window",
        type=parse_window,
        default=DEFAULT_WINDOW,
        metavar="DURATION",
        help="a message is ignored when one with its messageId came at most DURATION before "
        "(default 365d); `all`: however long before (memory grows with the history)",
    )
    replay.add_argument(
        "--render",
        action="store_true",
        help="render every notify and send with its template (on stderr); exit 1 if one fails",
    )

    explain = sub.add_parser("explain", help="why a prospect has its score, stage and sequences")
    explain.add_argument("prospect")
    explain.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="replay these events; without files, read the daemon's database",
    )
    explain.add_argument("--database-url", help="the daemon's database (default from config)")
    rule_args(explain)
    explain.add_argument(
        "--at", type=iso_time, metavar="TIME", help="explain at TIME (default: the end)"
    )
    explain.add_argument("--json", action="store_true", help="print JSON")

    sub.add_parser("schema", help="print the JSON Schema of rule files (for editors)")

    test = sub.add_parser("test", help="run rule tests (default: every file in rules/tests/)")
    test.add_argument("paths", nargs="*", metavar="PATH", help="test files or directories")
    rule_args(test)

    backtest_command.configure(
        sub.add_parser("backtest", help="compare two rule sets on the same history")
    )
    report_command.configure(sub.add_parser("report", help="funnel metrics of a history"))

    run = sub.add_parser("run", help="the daemon: ingest API, timers, delivery")
    rule_args(run)
    run.add_argument("--host", help="listen address (default from config, 127.0.0.1)")
    run.add_argument("--port", type=int, help="listen port (default from config, 8080)")
    run.add_argument("--database-url", help="sqlite:///var/leadrules.db or postgresql://...")

    export = sub.add_parser("export", help="the daemon's event log as Segment JSON Lines")
    rule_args(export)
    export.add_argument("--database-url")
    export.add_argument("--out", default="-", metavar="FILE")
    export.add_argument(
        "--prospect", metavar="ID", help="only this prospect's events, state and decisions"
    )
    export.add_argument("--by", help="who asks, for the privacy audit (default: the OS user)")

    forget = sub.add_parser("forget", help="erase a prospect's data (recorded in the audit)")
    forget.add_argument("prospect")
    rule_args(forget)
    forget.add_argument("--database-url")
    forget.add_argument("--by", help="who asks, for the privacy audit (default: the OS user)")
    forget.add_argument("--reason", help="why (a ticket number), kept in the audit")

    outbox = sub.add_parser("outbox", help="list, retry or drop undelivered messages")
    rule_args(outbox)
    outbox.add_argument("--database-url")
    outbox.add_argument("action", nargs="?", choices=("list", "retry", "drop"), default="list")
    outbox.add_argument(
        "--status", default=None, help="list only this status (pending, sent, dead, dropped)"
    )
    outbox.add_argument("--key", default=None, help="retry or drop only this decision")
    outbox.add_argument("--limit", type=int, default=50)

    quarantine = sub.add_parser(
        "quarantine", help="list, retry or discard events and timers whose evaluation failed"
    )
    rule_args(quarantine)
    quarantine.add_argument("--database-url")
    quarantine.add_argument(
        "action", nargs="?", choices=("list", "retry", "discard"), default="list"
    )
    quarantine.add_argument("ids", nargs="*", type=int, metavar="ID", help="default: all held")
    quarantine.add_argument(
        "--all", action="store_true", help="list also retried, discarded and obsolete items"
    )
    quarantine.add_argument("--limit", type=int, default=100)
    return parser
