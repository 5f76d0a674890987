"""The example playbook in rules/ replays the example events to the reviewed golden file."""

from __future__ import annotations

import io
import json
from pathlib import Path

from leadrules.engine.language.loader import check, load_rules
from leadrules.engine.replay.dry_run import replay
from leadrules.engine.replay.sources import EventFile
from leadrules.engine.timefmt import parse_timestamp

ROOT = Path(__file__).resolve().parents[1]


def test_example_rules_are_valid() -> None:
    assert check(ROOT / "rules", ROOT / "config") == []


def test_example_events_replay_to_the_golden_decisions() -> None:
    rules, warnings = load_rules(ROOT / "rules", ROOT / "config")
    assert warnings == []
    out = io.BytesIO()
    result = replay(
        [EventFile(str(ROOT / "examples" / "events.jsonl"))],
        rules,
        out,
        until=parse_timestamp("2026-06-01T00:00:00Z"),
    )
    got = [json.loads(line) for line in out.getvalue().splitlines()]
    golden = [
        json.loads(line)
        for line in (ROOT / "examples" / "decisions.jsonl").read_text().splitlines()
    ]
    assert got == golden
    assert result.stats.duplicates == 1
    assert result.stats.mqls == 2
