"""Commands on rule files and histories without the daemon: check, schema, test, backtest,
report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from leadrules.engine.cli.common import EXIT_ERROR, EXIT_OK, EXIT_USAGE, load, open_store
from leadrules.engine.errors import LeadrulesError, RuleError


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


def cmd_schema(args: argparse.Namespace) -> int:
    from leadrules.engine.language.schema import json_schema

    sys.stdout.write(orjson.dumps(json_schema(), option=orjson.OPT_INDENT_2).decode() + "\n")
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

    store = open_store(args)
    if getattr(args, "shadow", False) and _recorded_shadow_report(store):
        return EXIT_OK
    with tempfile.NamedTemporaryFile(prefix="leadrules-log-", suffix=".jsonl") as log:
        Service(store, load(args), WallClock()).export(log)  # the daemon's event log
        log.flush()
        if getattr(args, "shadow", False):
            return _shadow_report(args, log.name)
        args.files = [log.name]
        return report_command.main(args)


def _recorded_shadow_report(store: Any) -> bool:
    """`report --shadow` from what the daemon's shadow recorded; False when it never ran on
    this database (then the log is replayed under both rule sets)."""
    from leadrules.engine.core.shadow_diff import compare, render
    from leadrules.engine.daemon import shadow_store
    from leadrules.engine.timefmt import format_iso

    where = shadow_store.position(store)
    if where is None:
        return False
    diff = compare(shadow_store.live_records(store), shadow_store.shadow_records(store))
    print(render(diff))
    fired = "none" if where.fired_through is None else format_iso(where.fired_through)
    print(
        f"recorded by the daemon's shadow (rules {where.rules_version}): "
        f"{where.events_behind} event(s) not yet read, timers fired through {fired}, "
        f"{where.errors} error(s)",
        file=sys.stderr,
    )
    return True


def _shadow_report(args: argparse.Namespace, log: str) -> int:
    """`report --shadow`: the shadow rule set's "would have" decisions against live."""
    from leadrules.engine.language.settings import load_settings
    from leadrules.engine.replay.shadow import render, shadow_diff

    directory = load_settings(Path(args.config)).shadow
    if directory is None:
        raise LeadrulesError("no shadow rule set: set `shadow: DIR` in config/leadrules.yaml")
    live = load(args)
    shadow = load(argparse.Namespace(rules=directory, config=args.config))
    print(render(shadow_diff(log, live, shadow)))
    return EXIT_OK
