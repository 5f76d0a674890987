"""Memory that follows the window, not the history: `leadrules replay --dedupe-window`
through the real command line, on one process and on workers (the same bytes)."""

from __future__ import annotations

import json
import os
import pickle
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from leadrules.engine.core.scoring import COMPACT_AFTER
from leadrules.engine.language.loader import load_rules
from leadrules.engine.replay.lanes import Lane, run_lanes
from leadrules.engine.replay.sources import EventFile
from leadrules.engine.replay.spill import SpilledRecords
from leadrules.engine.timefmt import US_PER_S, format_iso, parse_timestamp
from tests.scenario import at, page, run_full, track, write_events, write_rules

ROOT = Path(__file__).resolve().parents[2]
RULES = """
triggers:
  - id: ping
    when: {event: Ping}
    then: [{notify: {channel: log, template: x}}]
"""


def _replay(tmp_path: Path, events: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    rules_dir, config_dir = tmp_path / "rules", tmp_path / "config"
    if not rules_dir.exists():
        write_rules(tmp_path, RULES)
    command = [sys.executable, "-m", "leadrules.engine.cli", "replay", str(events)]
    options = ["--rules", str(rules_dir), "--config", str(config_dir), "--out", "-", "--quiet"]
    return subprocess.run([*command, *options, *args], capture_output=True, cwd=ROOT)


def _pings(done: subprocess.CompletedProcess[bytes]) -> list[str]:
    assert done.returncode == 0, done.stderr.decode()
    return [json.loads(line)["at"] for line in done.stdout.splitlines()]


def _repeated(tmp_path: Path, days: float) -> Path:
    first = track("u1", at(0), "Ping")
    again = {**first, "timestamp": at(days)}  # the same messageId, `days` later
    return write_events(tmp_path / f"repeat-{days}.jsonl", [first, again])


def test_memory_a_repeat_within_the_window_is_ignored_one_after_it_is_new(
    tmp_path: Path,
) -> None:
    eight = _repeated(tmp_path, 8)
    assert len(_pings(_replay(tmp_path, eight))) == 1  # default: a year
    assert len(_pings(_replay(tmp_path, eight, "--dedupe-window", "8d"))) == 1  # at its end
    assert _pings(_replay(tmp_path, eight, "--dedupe-window", "7d")) == [
        "2026-03-02T09:00:00Z",
        "2026-03-10T09:00:00Z",
    ]
    late = _repeated(tmp_path, 365 + 1 / 86_400)  # a year and a second
    assert len(_pings(_replay(tmp_path, late))) == 2
    assert len(_pings(_replay(tmp_path, late, "--dedupe-window", "all"))) == 1
    year = _repeated(tmp_path, 365)
    assert len(_pings(_replay(tmp_path, year))) == 1


def test_memory_dedupe_window_refuses_what_is_not_a_duration(tmp_path: Path) -> None:
    events = _repeated(tmp_path, 1)
    for bad in ("0d", "week", "-1d"):
        done = _replay(tmp_path, events, "--dedupe-window", bad)
        assert done.returncode == 2
        assert b"--dedupe-window" in done.stderr


def test_memory_workers_give_the_same_bytes_with_a_window(tmp_path: Path) -> None:
    """Repeats from 1 to 12 days after their first copy, with a window of 5 days: some are
    ignored, some are new; N workers write what one process writes."""
    log = tmp_path / "generated.jsonl"
    generate = ["--events", "4000", "--prospects", "80", "--days", "60", "--seed", "3"]
    subprocess.run(
        [sys.executable, "-m", "bench.generate", *generate, "--out", str(log)], check=True, cwd=ROOT
    )
    messages = [json.loads(line) for line in log.read_text().splitlines()]
    rng = random.Random(5)
    repeats: list[dict[str, Any]] = []
    for message in rng.sample(messages, 300):
        later = parse_timestamp(message["timestamp"]) + rng.randint(1, 12) * 86_400 * US_PER_S
        repeats.append({**message, "timestamp": format_iso(later)})
    events = write_events(tmp_path / "events.jsonl", messages + repeats)
    write_rules(tmp_path, (ROOT / "rules" / "scoring.yaml").read_text())
    for name in ("triggers.yaml", "lifecycle.yaml", "sequences.yaml"):
        (tmp_path / "rules" / name).write_text((ROOT / "rules" / name).read_text())
    for template in (ROOT / "rules" / "templates").iterdir():
        (tmp_path / "rules" / "templates" / template.name).write_bytes(template.read_bytes())
    window = ["--dedupe-window", "5d"]
    one = _replay(tmp_path, events, *window, "--workers", "1")
    two = _replay(tmp_path, events, *window, "--workers", "2")
    assert one.returncode == two.returncode == 0, one.stderr.decode() + two.stderr.decode()
    assert one.stdout and one.stdout == two.stdout
    forever = _replay(tmp_path, events, "--dedupe-window", "all", "--workers", "1")
    assert forever.stdout != one.stdout  # the window decided something


def test_memory_spilled_records_cross_as_a_path_and_are_read_once(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    records = SpilledRecords()
    items = [((i, 0, 0, i), f"record {i}\n".encode()) for i in range(1_000)]
    for item in items:
        records.append(item)
    assert len(records) == 1_000
    received = pickle.loads(pickle.dumps(records))  # as a worker hands it to the parent
    del records  # the worker's side no longer owns the file
    assert len(list(tmp_path.iterdir())) == 1
    assert list(received) == items
    assert list(tmp_path.iterdir()) == []  # removed once read
    dropped = SpilledRecords()
    dropped.append(items[0])
    assert len(list(tmp_path.iterdir())) == 1
    del dropped
    assert list(tmp_path.iterdir()) == []


def test_memory_workers_leave_no_record_files(tmp_path: Path) -> None:
    events = write_events(
        tmp_path / "events.jsonl",
        [track(f"u{i % 7}", at(i / 24), "Ping") for i in range(200)],
    )
    spool = tmp_path / "spool"
    spool.mkdir()
    write_rules(tmp_path, RULES)
    options = ["--rules", str(tmp_path / "rules"), "--config", str(tmp_path / "config")]
    command = [sys.executable, "-m", "leadrules.engine.cli", "replay", str(events)]
    done = subprocess.run(
        [*command, "--workers", "3", *options, "--quiet"],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(spool)},
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert len(done.stdout.splitlines()) == 200
    assert list(spool.iterdir()) == []


def test_memory_a_prospects_ledger_follows_its_live_points_not_its_history(
    tmp_path: Path,
) -> None:
    """Points that expired are compacted away in a replay: after 600 days of daily visits
    worth points for 10 days, the ledger holds the 10 live entries and a few dead ones."""
    rules = """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 1, expires_after: 10d}
    triggers:
      - {id: ping, when: {event: Ping}, then: [{notify: {channel: log, template: x}}]}
    """
    events = [page("u1", at(day)) for day in range(600)]
    events.append(track("u1", at(599, 12), "Ping"))
    records, result = run_full(tmp_path, rules, events)
    assert [r["score"] for r in records] == [10]
    ledger = result.world.states["u1"].ledger
    live = [e for e in ledger if e.state == "active"]
    assert len(live) == 10
    assert len(ledger) <= 10 + max(COMPACT_AFTER, 10)
    kept = run_full(tmp_path / "kept", rules, events, keep_history=True)[1]
    assert len(kept.world.states["u1"].ledger) == 600  # explain's replay keeps them all


def test_memory_backtest_lanes_use_the_replays_window(tmp_path: Path) -> None:
    """Backtest's lanes decide duplicates as a replay does: a repeat after a year is new."""
    rules_dir, config_dir = write_rules(tmp_path, RULES)
    rules, _ = load_rules(rules_dir, config_dir, references="warn")
    first = track("u1", at(0), "Ping")
    events = [
        first,
        {**first, "timestamp": at(365)},  # within the year: ignored
        {**first, "timestamp": at(365, seconds=1)},  # a year and a second after: new
    ]
    source = write_events(tmp_path / "events.jsonl", events)
    made: list[int] = []
    lane = Lane(rules, collect=lambda decisions, when: made.append(when))
    _, stats = run_lanes([EventFile(str(source))], lambda: [lane], lambda _: None, print)
    assert (stats.events, stats.duplicates) == (2, 1)
    assert made == [parse_timestamp(at(0)), parse_timestamp(at(365, seconds=1))]
