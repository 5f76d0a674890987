"""Scenario helpers for contract tests: rule YAML and events in, decision records out.

Rules go through the real loader and events through the real replay, exactly as
`leadrules replay` runs them; only the files live in a temporary directory.
"""

from __future__ import annotations

import io
import itertools
import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from leadrules.engine.core.turn import Options
from leadrules.engine.language.loader import load_rules
from leadrules.engine.replay.dry_run import ReplayResult, replay
from leadrules.engine.replay.sources import EventFile
from leadrules.engine.timefmt import parse_timestamp

CHANNELS = """\
channels:
  sales: {adapter: console}
  sales-managers: {adapter: console}
  email: {adapter: console}
  crm: {adapter: console}
  log: {adapter: console}
"""

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
_ids = itertools.count(1)


def at(days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0) -> str:
    """An ISO timestamp relative to T0."""
    moment = T0 + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    return moment.isoformat().replace("+00:00", "Z")


def page(
    who: str, when: str, path: str = "/", *, anonymous: bool = False, **extra: Any
) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": "page", "timestamp": when, "messageId": f"m{next(_ids)}"}
    msg["anonymousId" if anonymous else "userId"] = who
    msg["properties"] = {
        "path": path,
        "url": f"https://www.example.com{path}",
        **extra.pop("properties", {}),
    }
    msg.update(extra)
    return msg


def track(
    who: str, when: str, event: str, *, anonymous: bool = False, **properties: Any
) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "type": "track",
        "event": event,
        "timestamp": when,
        "messageId": f"m{next(_ids)}",
    }
    msg["anonymousId" if anonymous else "userId"] = who
    if properties:
        msg["properties"] = properties
    return msg


def identify(who: str, when: str, anonymous_id: str | None = None, **traits: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "type": "identify",
        "userId": who,
        "timestamp": when,
        "messageId": f"m{next(_ids)}",
    }
    if anonymous_id is not None:
        msg["anonymousId"] = anonymous_id
    msg["traits"] = traits
    return msg


def write_rules(
    root: Path, rules: str | dict[str, str], templates: dict[str, str] | None = None
) -> tuple[Path, Path]:
    rules_dir, config_dir = root / "rules", root / "config"
    (rules_dir / "templates").mkdir(parents=True, exist_ok=True)
    config_dir.mkdir(exist_ok=True)
    files = {"rules.yaml": rules} if isinstance(rules, str) else rules
    for name, text in files.items():
        (rules_dir / name).write_text(textwrap.dedent(text))
    for name, text in (templates or {}).items():
        (rules_dir / "templates" / name).write_text(text)
    (config_dir / "channels.yaml").write_text(CHANNELS)
    return rules_dir, config_dir


def write_events(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def run_full(
    tmp_path: Path,
    rules: str | dict[str, str],
    events: list[dict[str, Any]],
    *,
    until: str | None = None,
    matcher: str = "python",
    keep_history: bool = False,
) -> tuple[list[dict[str, Any]], ReplayResult]:
    rules_dir, config_dir = write_rules(tmp_path, rules)
    ruleset, _ = load_rules(rules_dir, config_dir, references="warn")
    source = write_events(tmp_path / "events.jsonl", events)
    out = io.BytesIO()
    result = replay(
        [EventFile(str(source))],
        ruleset,
        out,
        until=None if until is None else parse_timestamp(until),
        matcher=matcher,
        options=Options(keep_history=keep_history),
    )
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    return records, result


def run(
    tmp_path: Path, rules: str | dict[str, str], events: list[dict[str, Any]], **kw: Any
) -> list[dict[str, Any]]:
    """Replay `events` under `rules`; the decision records."""
    return run_full(tmp_path, rules, events, **kw)[0]


def pick(records: list[dict[str, Any]], *keys: str) -> list[tuple[Any, ...]]:
    """Project records onto a few keys, for compact assertions."""
    return [tuple(r.get(k) for k in keys) for r in records]
