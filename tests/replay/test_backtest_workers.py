"""`leadrules backtest --workers N`: the same `--json` document as one process, for any N.

Generated histories with identity merges, duplicate messageIds and events out of order; a
candidate that shares the baseline's scoring (one probe lane) and one that does not (two);
histories written at random; input far enough out of order that every partition starts
again with a full sort."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from bench.generate import generate
from leadrules.engine.language.loader import load_rules
from leadrules.engine.replay import shares
from leadrules.engine.replay.backtest import run_backtest
from leadrules.engine.replay.backtest_result import summarize
from leadrules.engine.replay.backtest_workers import run_backtest_workers
from leadrules.engine.replay.sources import EventFile, Rejected
from tests.replay.test_workers import streams

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "leadrules.engine.cli", "backtest"]


def _candidate(root: Path, *edits: tuple[str, str, str]) -> Path:
    """A copy of the example rules with `(file, old, new)` text edits."""
    target = root / "candidate"
    shutil.copytree(ROOT / "rules", target / "rules")
    shutil.copytree(ROOT / "config", target / "config")
    for name, old, new in edits:
        path = target / "rules" / name
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))
    return target


def _history(path: Path, events: int, seed: int, **options: Any) -> Path:
    lines = (orjson.dumps(m) + b"\n" for m in generate(events, seed, **options))
    path.write_bytes(b"".join(lines))
    return path


def test_backtest_json_is_the_same_on_one_two_and_three_workers(tmp_path: Path) -> None:
    log = _history(tmp_path / "year.jsonl", 12_000, 5, prospects=300, shuffle=0.05, duplicates=0.05)
    candidate = _candidate(tmp_path, ("lifecycle.yaml", "mql_threshold: 80", "mql_threshold: 70"))
    documents = {}
    for n in (1, 2, 3):
        out = tmp_path / f"bt-{n}.json"
        done = subprocess.run(
            [
                *CLI,
                "--baseline",
                str(ROOT),
                "--candidate",
                str(candidate),
                str(log),
                "--json",
                str(out),
                "--quiet",
                "--workers",
                str(n),
            ],
            capture_output=True,
            cwd=ROOT,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()
        documents[n] = out.read_bytes()
    figures = json.loads(documents[1])
    # The history is one where the change matters: MQLs, outcomes, flips, merged ids.
    assert figures["baseline"]["mqls"] > 0 and figures["baseline"]["positives"] > 0
    assert figures["candidate"]["mqls"] > figures["baseline"]["mqls"]
    assert figures["became_mql"] and figures["duplicates"] > 0
    assert documents[2] == documents[1]
    assert documents[3] == documents[1]


BASELINE, _ = load_rules(ROOT / "rules", ROOT / "config", references="warn")


def _both(sources: list[EventFile], candidate: Any, workers: int) -> tuple[bytes, bytes]:
    rejected: list[Rejected] = []
    one = summarize(run_backtest(sources, BASELINE, candidate, on_reject=rejected.append))
    many_rejected: list[Rejected] = []
    many = summarize(
        run_backtest_workers(
            sources, BASELINE, candidate, workers=workers, on_reject=many_rejected.append
        )
    )
    assert [str(r) for r in many_rejected] == [str(r) for r in rejected]
    return orjson.dumps(one), orjson.dumps(many)


def test_a_candidate_with_other_scoring_has_its_own_probe_and_the_same_figures(
    tmp_path: Path,
) -> None:
    log = _history(tmp_path / "h.jsonl", 6000, 9, prospects=200)
    changed = _candidate(tmp_path, ("scoring.yaml", "points: 10", "points: 40"))
    candidate, _ = load_rules(changed / "rules", changed / "config", references="warn")
    assert candidate.scoring != BASELINE.scoring
    one, two = _both([EventFile(str(log))], candidate, 2)
    assert one == two
    figures = json.loads(one)
    curves = figures["baseline"]["threshold_curve"], figures["candidate"]["threshold_curve"]
    assert curves[0] != curves[1]  # two probes, each side its own curve


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=streams())
def test_any_history_gives_the_same_figures_on_two_workers(
    tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    rows = [
        *rows,
        {"type": "track", "userId": "u1", "event": "Deal Won", "timestamp": rows[-1]["timestamp"]},
    ]
    log = tmp_path / "events.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    one, two = _both([EventFile(str(log))], BASELINE, 2)
    assert two == one


def test_input_too_far_out_of_order_is_sorted_in_every_partition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _history(tmp_path / "h.jsonl", 3000, 3, prospects=80, shuffle=0.0)
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(reversed(lines[:400])) + b"".join(lines[400:]) + b"{broken\n")
    # The workers (forked: they see the patch) stream with a buffer of 5 messages, so every
    # partition meets a message too far out of order and starts again with a full sort.
    monkeypatch.setattr(shares, "REORDER_WINDOW", 5)
    one, two = _both([EventFile(str(log))], BASELINE, 2)
    assert two == one
    figures = json.loads(one)
    assert figures["events"] + figures["duplicates"] == 3000
    again = run_backtest_workers([EventFile(str(log))], BASELINE, BASELINE, workers=2)
    assert again.stats.restarted


def test_the_command_reports_rejected_lines_once_in_file_order(tmp_path: Path) -> None:
    log = _history(tmp_path / "h.jsonl", 2000, 4, prospects=60)
    lines = log.read_bytes().splitlines(keepends=True)
    lines[10:10] = [b"{not json\n", b'{"type": "track", "userId": "u-1"}\n']
    log.write_bytes(b"".join(lines))
    runs = {}
    for n in (1, 2):
        runs[n] = subprocess.run(
            [
                *CLI,
                "--baseline",
                str(ROOT),
                "--candidate",
                str(ROOT),
                str(log),
                "--json",
                "-",
                "--quiet",
                "--workers",
                str(n),
            ],
            capture_output=True,
            cwd=ROOT,
            check=False,
        )
    assert runs[1].returncode == runs[2].returncode == 3
    assert runs[2].stdout == runs[1].stdout
    rejected = [x for x in runs[2].stderr.splitlines() if x.startswith(b"rejected:")]
    assert rejected == [x for x in runs[1].stderr.splitlines() if x.startswith(b"rejected:")]
    assert len(rejected) == 2 and b":11:" in rejected[0] and b":12:" in rejected[1]


def test_the_progress_counts_the_partition_pass_and_the_workers_reading(tmp_path: Path) -> None:
    log = _history(tmp_path / "h.jsonl", 1000, 2, prospects=40)
    seen: list[int] = []
    run_backtest_workers([EventFile(str(log))], BASELINE, BASELINE, workers=2, on_bytes=seen.append)
    assert sum(seen) == 2 * log.stat().st_size
