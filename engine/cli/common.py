"""What the commands share: the exit codes, the options every command takes, reading the rule
set (warnings to stderr), opening event files, the daemon's database and an output file."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from leadrules.engine.errors import Problem
from leadrules.engine.timefmt import parse_timestamp

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REJECTED = 0, 1, 2, 3


def iso_time(text: str) -> int:
    try:
        return parse_timestamp(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None


def rule_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rules", default="rules", metavar="DIR", help="rule files (default: rules)"
    )
    parser.add_argument(
        "--config", default="config", metavar="DIR", help="settings (default: config)"
    )


def warn(problems: list[Problem]) -> None:
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)


def load(args: argparse.Namespace) -> Any:
    from leadrules.engine.language.loader import load_rules

    rules, warnings = load_rules(Path(args.rules), Path(args.config), references="warn")
    warn(warnings)
    return rules


def worker_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 255:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 255, got {text!r}")
    return value


def open_sources(files: list[str]) -> list[Any]:
    from leadrules.engine.replay.sources import event_files

    return list(event_files(files))


def open_store(args: argparse.Namespace) -> Any:
    from leadrules.engine.daemon.store import Store
    from leadrules.engine.language.settings import load_settings

    url = args.database_url or load_settings(Path(args.config)).database_url
    store = Store(url)
    store.migrate()
    return store


@contextmanager
def output(name: str) -> Iterator[IO[bytes]]:
    """`-` is standard output; anything else a file, closed afterwards."""
    if name == "-":
        yield sys.stdout.buffer
        return
    with open(name, "wb") as out:
        yield out
