"""The `leadrules` command line: check, replay, explain, schema (and run, for the daemon).

Exit codes (docs/cli.md): 0 success; 1 invalid rules or config, or another error;
2 bad command-line usage; 3 a replay or explain in which some input lines were rejected
(the rest was processed; `--strict` stops at the first such line).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import IO, Any

import orjson

from leadrules.engine.errors import LeadrulesError, Problem, RuleError
from leadrules.engine.timefmt import parse_timestamp

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REJECTED = 0, 1, 2, 3


def _time(text: str) -> int:
    try:
        return parse_timestamp(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None


def _rule_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rules", default="rules", metavar="DIR", help="rule files (default: rules)"
    )
    parser.add_argument(
        "--config", default="config", metavar="DIR", help="settings (default: config)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leadrules", description="Behaviour-based lead scoring and nurture rules engine."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser("check", help="validate rule files, templates and channels")
    _rule_args(check)

    replay = sub.add_parser("replay", help="dry-run the rules over historical events")
    replay.add_argument(
        "files", nargs="+", metavar="FILE", help="JSON Lines (.gz allowed, - for stdin)"
    )
    _rule_args(replay)
    replay.add_argument(
        "--until", type=_time, metavar="TIME", help="advance time to TIME at the end"
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
        type=_workers,
        default=0,
        metavar="N",
        help="processes evaluating prospects (default: every core); the output is the same "
        "for any N. --order received, --strict and --render run in one process",
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
    _rule_args(explain)
    explain.add_argument(
        "--at", type=_time, metavar="TIME", help="explain at TIME (default: the end)"
    )
    explain.add_argument("--json", action="store_true", help="print JSON")

    sub.add_parser("schema", help="print the JSON Schema of rule files (for editors)")

    test = sub.add_parser("test", help="run rule tests (default: every file in rules/tests/)")
    test.add_argument("paths", nargs="*", metavar="PATH", help="test files or directories")
    _rule_args(test)

    from leadrules.engine.replay import backtest_command

    backtest_command.configure(
        sub.add_parser("backtest", help="compare two rule sets on the same history")
    )
    from leadrules.engine.replay import report_command

    report_command.configure(sub.add_parser("report", help="funnel metrics of a history"))

    run = sub.add_parser("run", help="the daemon: ingest API, timers, delivery")
    _rule_args(run)
    run.add_argument("--host", help="listen address (default from config, 127.0.0.1)")
    run.add_argument("--port", type=int, help="listen port (default from config, 8080)")
    run.add_argument("--database-url", help="sqlite:///var/leadrules.db or postgresql://...")

    export = sub.add_parser("export", help="the daemon's event log as Segment JSON Lines")
    _rule_args(export)
    export.add_argument("--database-url")
    export.add_argument("--out", default="-", metavar="FILE")
    export.add_argument(
        "--prospect", metavar="ID", help="only this prospect's events, state and decisions"
    )
    export.add_argument("--by", help="who asks, for the privacy audit (default: the OS user)")

    forget = sub.add_parser("forget", help="erase a prospect's data (recorded in the audit)")
    forget.add_argument("prospect")
    _rule_args(forget)
    forget.add_argument("--database-url")
    forget.add_argument("--by", help="who asks, for the privacy audit (default: the OS user)")
    forget.add_argument("--reason", help="why (a ticket number), kept in the audit")

    outbox = sub.add_parser("outbox", help="list, retry or drop undelivered messages")
    _rule_args(outbox)
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
    _rule_args(quarantine)
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        handler = {
            "check": cmd_check,
            "replay": cmd_replay,
            "explain": cmd_explain,
            "schema": cmd_schema,
            "test": cmd_test,
            "run": cmd_run,
            "export": cmd_export,
            "outbox": cmd_outbox,
            "quarantine": cmd_quarantine,
            "forget": cmd_forget,
            "backtest": cmd_backtest,
            "report": cmd_report,
        }
        return handler[args.command](args)
    except RuleError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stdout)
        return EXIT_ERROR
    except LeadrulesError as exc:
        print(f"leadrules: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"leadrules: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _warn(problems: list[Problem]) -> None:
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    from leadrules.engine.language.loader import check

    problems = check(Path(args.rules), Path(args.config))
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return EXIT_ERROR
    print(f"{args.rules}: ok", file=sys.stderr)
    return EXIT_OK


def cmd_backtest(args: argparse.Namespace) -> int:
    from leadrules.engine.replay import backtest_command

    return backtest_command.main(args)


def cmd_report(args: argparse.Namespace) -> int:
    import tempfile

    from leadrules.engine.replay import report_command

    if args.files and getattr(args, "shadow", False):
        return _shadow_report(args, args.files[0])
    if args.files:
        return report_command.main(args)
    from leadrules.engine.clock import WallClock
    from leadrules.engine.daemon.service import Service

    with tempfile.NamedTemporaryFile(prefix="leadrules-log-", suffix=".jsonl") as log:
        Service(_store(args), _load(args), WallClock()).export(log)  # the daemon's event log
        log.flush()
        if getattr(args, "shadow", False):
            return _shadow_report(args, log.name)
        args.files = [log.name]
        return report_command.main(args)


def _shadow_report(args: argparse.Namespace, log: str) -> int:
    """`report --shadow`: the shadow rule set's "would have" decisions against live."""
    from leadrules.engine.language.settings import load_settings
    from leadrules.engine.replay.shadow import render, shadow_diff

    directory = load_settings(Path(args.config)).shadow
    if directory is None:
        raise LeadrulesError("no shadow rule set: set `shadow: DIR` in config/leadrules.yaml")
    live = _load(args)
    shadow = _load(argparse.Namespace(rules=directory, config=args.config))
    print(render(shadow_diff(log, live, shadow)))
    return EXIT_OK


def cmd_test(args: argparse.Namespace) -> int:
    """Exit 0: every test passed; 1: some failed; 2: the rules or a test file are invalid."""
    from leadrules.engine.language.loader import load_rules
    from leadrules.engine.language.test_files import read_test, yaml_under
    from leadrules.engine.replay.rule_tests import run_test

    paths: list[Path] = []
    for name in args.paths or [str(Path(args.rules) / "tests")]:
        path = Path(name)
        if path.is_dir():
            paths += yaml_under(path)
        elif path.is_file():
            paths.append(path)
        else:
            print(f"leadrules: {name}: no such file or directory", file=sys.stderr)
            return EXIT_USAGE
    try:
        rules, _ = load_rules(Path(args.rules), Path(args.config), references="warn")
    except RuleError as exc:
        for problem in exc.problems:
            print(problem)
        return EXIT_USAGE
    tests, problems = [], []
    for path in paths:
        test, found = read_test(path)
        problems += found
        if test is not None:
            tests.append(test)
    if problems:
        for problem in problems:
            print(problem)
        return EXIT_USAGE
    failed = 0
    for test in tests:
        outcome = run_test(test, rules)
        print(f"{'ok  ' if outcome.passed else 'FAIL'} {test.path}: {test.name}")
        for failure in outcome.failures:
            print(failure)
        failed += not outcome.passed
    print(f"{len(tests) - failed} passed, {failed} failed", file=sys.stderr)
    return EXIT_ERROR if failed else EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from leadrules.engine.language.schema import json_schema

    sys.stdout.write(orjson.dumps(json_schema(), option=orjson.OPT_INDENT_2).decode() + "\n")
    return EXIT_OK


def _load(args: argparse.Namespace) -> Any:
    from leadrules.engine.language.loader import load_rules

    rules, warnings = load_rules(Path(args.rules), Path(args.config), references="warn")
    _warn(warnings)
    return rules


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 255:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 255, got {text!r}")
    return value


def _default_workers(sources: list[Any]) -> int:
    """Every core, for input large enough to repay starting the workers (see docs/scale.md)."""
    from leadrules.engine.replay.workers import PARALLEL_BYTES, default_workers

    if sum(s.size() for s in sources) < PARALLEL_BYTES:
        return 1
    return min(default_workers(), 255)


def _sources(files: list[str]) -> list[Any]:
    from leadrules.engine.replay.sources import EventFile

    for name in files:
        if name != "-" and not Path(name).is_file():
            raise LeadrulesError(f"{name}: no such file")
    return [EventFile(name) for name in files]


def cmd_replay(args: argparse.Namespace) -> int:
    from leadrules.engine.replay.dry_run import StrictStop, replay
    from leadrules.engine.replay.summary import Progress, print_summary

    rules = _load(args)
    sources = _sources(args.files)
    out: IO[bytes] = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")  # noqa: SIM115
    rejected: list[str] = []

    def on_reject(item: Any) -> None:
        rejected.append(str(item))
        print(f"rejected: {item}", file=sys.stderr)

    renderer = _renderer(args) if args.render else None
    try:
        workers = args.workers or _default_workers(sources)
        parallel = workers > 1 and args.order == "timestamp" and not args.strict and not renderer
        with Progress(sources, enabled=not args.quiet, passes=2 if parallel else 1) as progress:
            if parallel:
                from leadrules.engine.replay.workers import replay_workers

                result = replay_workers(
                    sources,
                    rules,
                    out,
                    workers=workers,
                    until=args.until,
                    matcher=args.matcher,
                    on_reject=on_reject,
                    on_bytes=progress.advance,
                )
            else:
                result = replay(
                    sources,
                    rules,
                    out,
                    options=None if renderer is None else renderer.options,
                    on_decisions=renderer,
                    until=args.until,
                    matcher=args.matcher,
                    strict=args.strict,
                    on_reject=on_reject,
                    on_bytes=progress.advance,
                    order=args.order,
                )
    except StrictStop as stop:
        print(f"rejected: {stop.rejected}", file=sys.stderr)
        print("stopped at the first rejected line (--strict)", file=sys.stderr)
        return EXIT_REJECTED
    finally:
        if out is not sys.stdout.buffer:
            out.close()
        for source in sources:
            source.close()
    if not args.quiet:
        print_summary(result.stats)
    if renderer is not None:
        for line in renderer.summary():
            print(line, file=sys.stderr)
        if renderer.failures:
            return EXIT_ERROR
    return EXIT_REJECTED if result.stats.lines_rejected else EXIT_OK


def _renderer(args: argparse.Namespace) -> Any:
    from leadrules.engine.language.templates import TemplateSet
    from leadrules.engine.replay.render import Renderer

    return Renderer(TemplateSet(Path(args.rules) / "templates"), quiet=args.quiet)


def cmd_explain(args: argparse.Namespace) -> int:
    from leadrules.engine.replay.explain import explain_prospect, render_text

    rules = _load(args)
    if args.files:
        world, at, rejected = _replayed_world(args, rules)
    else:
        world, at = _stored_world(args, args.prospect)
        rejected = 0
    report = explain_prospect(world, rules, args.prospect, at)
    if report is None:
        print(f"leadrules: no events for prospect {args.prospect!r}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(render_text(report))
    return EXIT_REJECTED if rejected else EXIT_OK


def _replayed_world(args: argparse.Namespace, rules: Any) -> tuple[Any, int, int]:
    from leadrules.engine.core.turn import Options
    from leadrules.engine.replay.dry_run import replay

    sources = _sources(args.files)

    class _Discard:
        def write(self, data: bytes) -> int:
            return len(data)

    try:
        result = replay(
            sources,
            rules,
            _Discard(),  # type: ignore[arg-type]
            until=args.at,
            options=Options(keep_history=True),
            on_reject=lambda item: print(f"rejected: {item}", file=sys.stderr),
        )
    finally:
        for source in sources:
            source.close()
    at = result.end_at if result.end_at is not None else 0
    return result.world, at, result.stats.lines_rejected


def _stored_world(args: argparse.Namespace, prospect: str) -> tuple[Any, int]:
    """The daemon's view of one prospect, read from its database into an in-memory world."""
    from leadrules.engine.clock import WallClock
    from leadrules.engine.daemon.db_world import DbWorld
    from leadrules.engine.replay.memory_world import MemoryWorld

    store = _store(args)
    world = MemoryWorld()
    with store.session() as session:
        stored = DbWorld(session, 0)
        canonical = stored.resolve(prospect)
        if canonical != prospect:
            world.link(prospect, canonical)
        state = stored.get(canonical)
        if state is not None:
            world.states[canonical] = state
            for timer in stored.load_all_timers():
                if stored.resolve(timer.prospect) == canonical:
                    world.schedule(timer)
    store.dispose()
    return world, args.at if args.at is not None else WallClock().now_us()


def cmd_run(args: argparse.Namespace) -> int:
    from leadrules.engine.daemon.runtime import Daemon, DaemonOptions, configure_logging

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


def _store(args: argparse.Namespace) -> Any:
    from leadrules.engine.daemon.store import Store
    from leadrules.engine.language.settings import load_settings

    url = args.database_url or load_settings(Path(args.config)).database_url
    store = Store(url)
    store.migrate()
    return store


def cmd_forget(args: argparse.Namespace) -> int:
    from leadrules.engine.clock import WallClock
    from leadrules.engine.daemon.privacy import forget

    erased = forget(_store(args), args.prospect, WallClock(), operator=args.by, reason=args.reason)
    print(f"{erased.summary()}; audit #{erased.audit_id}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from leadrules.engine.clock import WallClock
    from leadrules.engine.daemon.service import Service

    if args.prospect is not None:
        return _export_prospect(args)
    rules = _load(args)
    service = Service(_store(args), rules, WallClock())
    out: IO[bytes] = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")  # noqa: SIM115
    try:
        count = service.export(out)
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    print(f"{count} events exported", file=sys.stderr)
    return EXIT_OK


def _export_prospect(args: argparse.Namespace) -> int:
    from leadrules.engine.clock import WallClock
    from leadrules.engine.daemon.privacy import export

    out: IO[bytes] = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")  # noqa: SIM115
    try:
        counts = export(_store(args), args.prospect, out, WallClock(), operator=args.by)
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    print(", ".join(f"{n} {k}" for k, n in counts.items()) + " exported", file=sys.stderr)
    return EXIT_OK


def cmd_quarantine(args: argparse.Namespace) -> int:
    from leadrules.engine.daemon import quarantine
    from leadrules.engine.timefmt import format_iso

    store = _store(args)
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
    store = _store(args)
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


if __name__ == "__main__":
    sys.exit(main())
