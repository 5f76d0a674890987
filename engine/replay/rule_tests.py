"""`leadrules test`: rule tests, run as replays, so RevOps can test a rule change in CI.

Each test file (leadrules.engine.language.test_files) is a story of Segment messages; its
events are replayed exactly as `leadrules replay --until` would replay them, and the
decision records and the prospects' end states are compared with what the test expects.
Expected decisions are subsets of records matched in order (other records may lie between
them unless `exactly`), so a test names only what it is about.
"""

from __future__ import annotations

import difflib
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from leadrules.engine.core.accounts import account_score
from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.language.test_files import RuleTest, rule_test_files
from leadrules.engine.replay.dry_run import ReplayResult, replay
from leadrules.engine.replay.sources import EventFile


@dataclass
class RuleTestOutcome:
    test: RuleTest
    failures: list[str]  # empty: passed

    @property
    def passed(self) -> bool:
        return not self.failures


def _matches(expected: dict[str, Any], record: dict[str, Any]) -> bool:
    return all(key in record and record[key] == value for key, value in expected.items())


def _subsequence(expected: list[dict[str, Any]], records: list[dict[str, Any]]) -> int | None:
    """The index of the first expected item not found in order (None: all found)."""
    position = 0
    for index, item in enumerate(expected):
        while position < len(records) and not _matches(item, records[position]):
            position += 1
        if position == len(records):
            return index
        position += 1
    return None


def _line(record: dict[str, Any], keys: list[str] | None = None) -> str:
    shown = record if keys is None else {k: record[k] for k in keys if k in record}
    return orjson.dumps(shown).decode()


def _diff(expected: list[dict[str, Any]], records: list[dict[str, Any]]) -> list[str]:
    """A unified diff of the expected items against the records, each record cut to the keys
    the test names (so the diff shows what the test is about)."""
    keys: list[str] = []
    for item in expected:
        keys += [k for k in item if k not in keys]
    want = [_line(item) for item in expected]
    got = [_line(record, keys or None) for record in records]
    return list(difflib.unified_diff(want, got, "expected", "actual", lineterm="", n=2))


def run_test(test: RuleTest, rules: RuleSet) -> RuleTestOutcome:
    """Replay the test's story under `rules` and compare."""
    with tempfile.NamedTemporaryFile(prefix="leadrules-test-", suffix=".jsonl") as story:
        for message in test.messages:
            story.write(orjson.dumps(message) + b"\n")
        story.flush()
        out = io.BytesIO()
        source = EventFile(story.name)
        result = replay([source], rules, out, until=test.until)
    records = [orjson.loads(line) for line in out.getvalue().splitlines()]
    failures: list[str] = []
    expected = [item for _, item in test.decisions]
    missing = _subsequence(expected, records)
    if missing is not None:
        line, item = test.decisions[missing]
        failures.append(
            f"{test.path}:{line}: expected decision not found (in order): {_line(item)}\n"
            + "\n".join(_diff(expected, records))
        )
    elif test.exactly and len(records) != len(expected):
        failures.append(
            f"{test.path}:{test.line}: exactly: {len(records)} decision(s), "
            f"{len(expected)} expected\n" + "\n".join(_diff(expected, records))
        )
    end = result.end_at if result.end_at is not None else 0
    for prospect, (line, want) in test.prospects.items():
        state = result.world.get(result.world.resolve(prospect))
        if state is None:
            failures.append(f"{test.path}:{line}: prospect {prospect!r}: no such prospect")
            continue
        got = {"score": state.score(end), "stage": state.stage}
        got = {k: v for k, v in got.items() if k in want}
        if got != want:
            failures.append(
                f"{test.path}:{line}: prospect {prospect!r}: expected {_line(want)}, "
                f"got {_line(got)}"
            )
    failures += _account_failures(test, result, end)
    return RuleTestOutcome(test, failures)


def _account_failures(test: RuleTest, result: ReplayResult, end: int) -> list[str]:
    """`expect.accounts`: each account's score and stage at the end."""
    failures = []
    top = result.evaluator.compiled.rules.accounts
    for account_id, (line, want) in test.accounts.items():
        account = result.world.accounts.get(account_id)
        if account is None or top is None:
            failures.append(f"{test.path}:{line}: account {account_id!r}: no such account")
            continue
        got: dict[str, Any] = {
            "score": account_score(result.world, account, end, top.top),
            "stage": account.stage,
        }
        got = {k: v for k, v in got.items() if k in want}
        if got != want:
            failures.append(
                f"{test.path}:{line}: account {account_id!r}: expected {_line(want)}, "
                f"got {_line(got)}"
            )
    return failures


def default_paths(rules_dir: Path) -> list[Path]:
    """`leadrules test` without paths: every test file under `rules/tests/`."""
    return rule_test_files(rules_dir)
