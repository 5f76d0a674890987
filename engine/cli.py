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

from engine.errors import LeadrulesError, Problem, RuleError
from engine.timefmt import parse_timestamp

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
    replay.add_argument("--strict", action="store_true", help="stop at the first rejected line")
    replay.add_argument("--quiet", action="store_true", help="no summary on stderr")

    explain = sub.add_parser("explain", help="why a prospect has its score, stage and sequences")
    explain.add_argument("prospect")
    explain.add_argument("files", nargs="+", metavar="FILE")
    _rule_args(explain)
    explain.add_argument(
        "--at", type=_time, metavar="TIME", help="explain at TIME (default: the end)"
    )
    explain.add_argument("--json", action="store_true", help="print JSON")

    sub.add_parser("schema", help="print the JSON Schema of rule files (for editors)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        handler = {
            "check": cmd_check,
            "replay": cmd_replay,
            "explain": cmd_explain,
            "schema": cmd_schema,
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
    from engine.loader import check

    problems = check(Path(args.rules), Path(args.config))
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return EXIT_ERROR
    print(f"{args.rules}: ok", file=sys.stderr)
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from engine.schema import json_schema

    sys.stdout.write(orjson.dumps(json_schema(), option=orjson.OPT_INDENT_2).decode() + "\n")
    return EXIT_OK


def _load(args: argparse.Namespace) -> Any:
    from engine.loader import load_rules

    rules, warnings = load_rules(Path(args.rules), Path(args.config), references="warn")
    _warn(warnings)
    return rules


def _sources(files: list[str]) -> list[Any]:
    from engine.sources import Source

    for name in files:
        if name != "-" and not Path(name).is_file():
            raise LeadrulesError(f"{name}: no such file")
    return [Source(name) for name in files]


def cmd_replay(args: argparse.Namespace) -> int:
    from engine.replay import StrictStop, replay
    from engine.summary import Progress, print_summary

    rules = _load(args)
    sources = _sources(args.files)
    out: IO[bytes] = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")  # noqa: SIM115
    rejected: list[str] = []

    def on_reject(item: Any) -> None:
        rejected.append(str(item))
        print(f"rejected: {item}", file=sys.stderr)

    try:
        with Progress(sources, enabled=not args.quiet) as progress:
            result = replay(
                sources,
                rules,
                out,
                until=args.until,
                matcher=args.matcher,
                strict=args.strict,
                on_reject=on_reject,
                on_bytes=progress.advance,
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
    return EXIT_REJECTED if result.stats.lines_rejected else EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    from engine.explain import explain_prospect, render_text
    from engine.replay import replay
    from engine.turn import Options

    rules = _load(args)
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
    report = explain_prospect(result.world, rules, args.prospect, at)
    if report is None:
        print(f"leadrules: no events for prospect {args.prospect!r}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(render_text(report))
    return EXIT_REJECTED if result.stats.lines_rejected else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
