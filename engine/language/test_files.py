"""Rule test files (`rules/tests/*.yaml`): their shape, read with positions like rule files.

A test file names a story (Segment messages), an optional end time and what the rules must
decide for it. `leadrules test` runs them (leadrules.engine.replay.rule_tests); `check`
validates them here, so a broken test is a positioned problem before CI runs it. They live
under the rules directory but are never loaded as rule files (loader.rule_files skips
`tests/`): a test file's keys are not rule keys.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from leadrules.engine.core.events import Event, normalize
from leadrules.engine.errors import EventError, Problem
from leadrules.engine.language.validation import validation_problems
from leadrules.engine.language.yaml_source import Source
from leadrules.engine.language.yaml_source import load as load_yaml
from leadrules.engine.timefmt import parse_timestamp

TESTS_DIR = "tests"  # under the rules directory

StageName = Literal["lead", "mql", "sal", "sql", "customer", "recycled"]
RECORD_KEYS = (
    *("at", "prospect", "action", "rule", "channel", "template", "sequence", "stage"),
    *("step", "score", "reason", "account", "deliver_at"),
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProspectExpect(_Strict):
    """A prospect's state at the end of the test (or at `until`)."""

    score: int | None = Field(default=None, description="the score at the end")
    stage: StageName | None = Field(default=None, description="the stage at the end")


class AccountExpect(_Strict):
    """An account's state at the end of the test (rules with accounts)."""

    score: int | None = Field(default=None, description="the account score at the end")
    stage: Literal["lead", "mql"] | None = Field(
        default=None, description="the account's stage at the end"
    )


class Expect(_Strict):
    decisions: list[dict[str, Any]] = Field(
        default_factory=list,
        description="each item is matched, in order, as a subset of one decision record",
    )
    exactly: bool = Field(default=False, description="true: no decision other than those listed")
    prospects: dict[str, ProspectExpect] = Field(default_factory=dict)
    accounts: dict[str, AccountExpect] = Field(default_factory=dict)


class RuleTestFile(_Strict):
    """One rule test: a story of Segment messages and what the rules must decide."""

    name: str
    description: str | None = None
    events: list[dict[str, Any]] = Field(description="Segment messages, as replay reads them")
    until: str | None = Field(default=None, description="ISO 8601: replay's --until")
    expect: Expect


@dataclass
class RuleTest:
    """A validated test file, with the positions `leadrules test` reports failures at."""

    path: str
    name: str
    line: int
    events: list[Event]
    messages: list[dict[str, Any]]  # as JSON, for replay
    until: int | None
    decisions: list[tuple[int, dict[str, Any]]]  # (line, expected subset)
    exactly: bool
    prospects: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    accounts: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)


def rule_test_files(rules_dir: Path) -> list[Path]:
    """Every `*.yaml` / `*.yml` under `rules_dir/tests/`, in path order."""
    return yaml_under(Path(rules_dir) / TESTS_DIR)


def yaml_under(directory: Path) -> list[Path]:
    """Every `*.yaml` / `*.yml` file under `directory` (recursively), in path order."""
    if not directory.is_dir():
        return []
    found = directory.rglob("*")
    return sorted(p for p in found if p.suffix in (".yaml", ".yml") and p.is_file())


def _plain(value: Any) -> Any:
    """YAML timestamps (unquoted) become the ISO strings a JSON message would carry."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def read_test(path: Path) -> tuple[RuleTest | None, list[Problem]]:
    """One test file -> a `RuleTest`, or every problem in it (positioned)."""
    shown = _shown(path)
    src, problems = load_yaml(path, shown)
    if problems:
        return None, problems
    data = _plain(src.data)
    if not isinstance(data, dict):
        return None, [src.at((), "a rule test is a mapping of name, events, expect")]
    try:
        model = RuleTestFile.model_validate(data)
    except ValidationError as exc:
        return None, validation_problems(src, exc, model=RuleTestFile)
    events: list[Event] = []
    messages: list[dict[str, Any]] = []
    for index, raw in enumerate(model.events):
        try:
            message = orjson.loads(orjson.dumps(raw))
            message.setdefault("messageId", f"{shown}:{_line(src, ('events', index))}")
            events.append(normalize(message))
            messages.append(message)
        except EventError as exc:
            problems.append(src.at(("events", index, exc.field), f"event: {exc}"))
        except (TypeError, orjson.JSONEncodeError) as exc:
            problems.append(src.at(("events", index), f"event: {exc}"))
    until = None
    if model.until is not None:
        try:
            until = parse_timestamp(model.until)
        except ValueError:
            problems.append(src.at(("until",), f"until: not an ISO 8601 time: {model.until!r}"))
    problems += _expect_problems(src, model)
    if problems:
        return None, problems
    line = src.values.get((), (1, 1))[0]
    return (
        RuleTest(
            path=shown,
            name=model.name,
            line=line,
            events=events,
            messages=messages,
            until=until,
            decisions=[
                (_line(src, ("expect", "decisions", i)), item)
                for i, item in enumerate(model.expect.decisions)
            ],
            exactly=model.expect.exactly,
            prospects={
                pid: (_line(src, ("expect", "prospects", pid)), p.model_dump(exclude_none=True))
                for pid, p in model.expect.prospects.items()
            },
            accounts={
                aid: (_line(src, ("expect", "accounts", aid)), a.model_dump(exclude_none=True))
                for aid, a in model.expect.accounts.items()
            },
        ),
        [],
    )


def _line(src: Source, path: tuple[Any, ...]) -> int:
    return src.at(path, "").line


def _expect_problems(src: Source, model: RuleTestFile) -> list[Problem]:
    """Expected decisions name only keys that decision records have."""
    problems = []
    for index, item in enumerate(model.expect.decisions):
        for key in item:
            if key not in RECORD_KEYS:
                where = ("expect", "decisions", index, key)
                known = ", ".join(RECORD_KEYS)
                problems.append(src.at(where, f"unknown record key {key!r} ({known})", key=True))
    return problems


def rule_test_problems(rules_dir: Path) -> list[Problem]:
    """What `check` reports about the test files under `rules_dir/tests/`."""
    problems: list[Problem] = []
    for path in rule_test_files(rules_dir):
        problems += read_test(path)[1]
    return problems
