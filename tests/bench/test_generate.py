"""The event generator and the bench code at tiny sizes (the benchmarks themselves never run
in the test suite)."""

from __future__ import annotations

import gzip
import itertools
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.generate import generate
from bench.rulegen import rules_yaml
from leadrules.engine.core.events import normalize
from leadrules.engine.language.loader import load_rules

ROOT = Path(__file__).resolve().parents[2]


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    a = [json.dumps(m) for m in generate(3000, 7, prospects=100)]
    assert a == [json.dumps(m) for m in generate(3000, 7, prospects=100)]
    assert a != [json.dumps(m) for m in generate(3000, 8, prospects=100)]


def test_every_message_is_valid_and_the_count_is_exact() -> None:
    messages = list(generate(20_000, 3, prospects=500))
    assert len(messages) == 20_000
    for m in messages:
        normalize(m)
    kinds = Counter(m["type"] for m in messages)
    assert kinds["page"] > kinds["track"] > kinds["identify"] > 0 and kinds["alias"] > 0
    ids = Counter(m["messageId"] for m in messages)
    duplicates = sum(n - 1 for n in ids.values())
    assert 0.003 < duplicates / len(messages) < 0.008
    late = sum(1 for a, b in itertools.pairwise(messages) if b["timestamp"] < a["timestamp"])
    assert 0.004 < late / len(messages) < 0.02


def test_anonymous_prospects_later_identify_with_both_ids() -> None:
    messages = list(generate(10_000, 5, prospects=200))
    linked = {m["anonymousId"]: m["userId"] for m in messages if m["type"] == "identify"}
    assert linked
    anon, _user = next(iter(linked.items()))
    before = [m for m in messages if m.get("anonymousId") == anon and "userId" not in m]
    assert before and all(m["type"] != "identify" for m in before)


def test_cli_writes_sorted_gzip(tmp_path: Path) -> None:
    out = tmp_path / "e.jsonl.gz"
    subprocess.run(
        [sys.executable, "-m", "bench.generate", "--events", "2000", "--sorted", "--out", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with gzip.open(out, "rt") as handle:
        stamps = [json.loads(line)["timestamp"] for line in handle]
    assert len(stamps) == 2000
    # --sorted: no displaced lines (duplicates stay, placed shortly after their original)
    assert sum(1 for a, b in itertools.pairwise(stamps) if b < a) <= 20


def test_generated_rule_sets_load(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    (rules / "templates").mkdir(parents=True)
    (rules / "templates" / "t.md").write_text("{{ prospect }}\n")
    (rules / "r.yaml").write_text(rules_yaml(50))
    config = tmp_path / "config"
    config.mkdir()
    (config / "channels.yaml").write_text("channels:\n  log: {adapter: console}\n")
    ruleset, _ = load_rules(rules, config)
    assert len(ruleset.scoring) + len(ruleset.triggers) == 50


def test_the_floor_and_durable_baselines_run(tmp_path: Path) -> None:
    events = tmp_path / "e.jsonl"
    events.write_text("".join(json.dumps(m) + "\n" for m in generate(500, 1, prospects=20)))
    floor = subprocess.run(
        [sys.executable, "-m", "bench.floor", str(events)],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    assert int(floor.stdout) == 500
    durable = subprocess.run(
        [sys.executable, "-m", "bench.durable_raw", str(events)],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    assert int(durable.stdout) > 0
