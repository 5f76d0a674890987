"""`leadrules backtest --baseline DIR --candidate DIR EVENTS... [--json F] [--html F]`:
the arguments and the command (engine/cli/ only registers it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.errors import LeadrulesError, Problem
from leadrules.engine.language.loader import load_rules
from leadrules.engine.replay.backtest import run_backtest
from leadrules.engine.replay.backtest_result import summarize
from leadrules.engine.replay.backtest_view import render
from leadrules.engine.replay.sources import EventFile, Rejected, event_files

EXIT_OK, EXIT_REJECTED = 0, 3


def worker_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 255:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 255, got {text!r}")
    return value


def default_workers(sources: list[EventFile]) -> int:
    """Every core, for input large enough to repay the partition pass (docs/scale.md)."""
    from leadrules.engine.replay.pool import default_workers as cores
    from leadrules.engine.replay.shares import PARALLEL_BYTES

    if sum(s.size() for s in sources) < PARALLEL_BYTES:
        return 1
    return min(cores(), 255)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--baseline",
        required=True,
        metavar="DIR",
        help="the rule set in use: DIR/rules (and DIR/config), or a rules folder",
    )
    parser.add_argument("--candidate", required=True, metavar="DIR", help="the changed rule set")
    parser.add_argument(
        "files", nargs="+", metavar="EVENTS", help="JSON Lines (.gz allowed, - for stdin)"
    )
    parser.add_argument(
        "--config",
        default="config",
        metavar="DIR",
        help="settings for a DIR without config/ (default: config)",
    )
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON (- for stdout)")
    parser.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")
    parser.add_argument(
        "--flips", type=int, default=10, help="prospects listed per change (default 10)"
    )
    parser.add_argument("--quiet", action="store_true", help="no table on the terminal")
    parser.add_argument(
        "--workers",
        type=worker_count,
        default=0,
        metavar="N",
        help="processes evaluating prospects (default: every core for 8 MB of input or "
        "more); the figures are the same for any N",
    )
    parser.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="run the partitions on the Dask scheduler at ADDRESS (tcp://host:8786); every "
        "worker must read the EVENTS paths (docs/scale.md)",
    )


def rule_dirs(directory: str, default_config: str) -> tuple[Path, Path]:
    """DIR holding `rules/` (and maybe `config/`), or DIR being the rules folder itself."""
    path = Path(directory)
    if not path.is_dir():
        raise LeadrulesError(f"{directory}: no such directory")
    rules = path / "rules" if (path / "rules").is_dir() else path
    config = path / "config" if (path / "config").is_dir() else Path(default_config)
    return rules, config


def _load(directory: str, default_config: str) -> RuleSet:
    rules_dir, config_dir = rule_dirs(directory, default_config)
    rules, warnings = load_rules(rules_dir, config_dir, references="warn")
    _warn(warnings)
    return rules


def _warn(problems: list[Problem]) -> None:
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)


def main(args: argparse.Namespace) -> int:
    baseline = _load(args.baseline, args.config)
    candidate = _load(args.candidate, args.config)
    sources = event_files(args.files)
    rejected: list[Rejected] = []

    def on_reject(item: Rejected) -> None:
        rejected.append(item)
        print(f"rejected: {item}", file=sys.stderr)

    try:
        workers = args.workers or (0 if args.cluster else default_workers(sources))
        if args.cluster or workers > 1:
            from leadrules.engine.replay.backtest_workers import run_backtest_workers

            run = run_backtest_workers(
                sources,
                baseline,
                candidate,
                workers=workers,
                on_reject=on_reject,
                cluster=args.cluster,
            )
        else:
            run = run_backtest(sources, baseline, candidate, on_reject=on_reject)
    finally:
        for source in sources:
            source.close()
    result = summarize(run, (args.baseline, args.candidate))
    result["lines_rejected"] = len(rejected)
    if args.json:
        _write_json(result, args.json)
    if args.html:
        from leadrules.engine.replay.backtest_html import backtest_html

        Path(args.html).write_text(backtest_html(result), encoding="utf-8")
    if not args.quiet:
        to_stdout = args.json == "-"
        stream = sys.stderr if to_stdout else sys.stdout
        width = None if stream.isatty() else 160
        render(result, Console(file=stream, width=width), flips=args.flips)
    return EXIT_REJECTED if rejected else EXIT_OK


def _write_json(result: dict[str, Any], target: str) -> None:
    data = orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n"
    if target == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        Path(target).write_bytes(data)
