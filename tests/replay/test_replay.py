"""Contract "Command line": `leadrules replay` as a user runs it, in a subprocess."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.scenario import at, page, track, write_events, write_rules

RULES = """
scoring:
  rules:
    - {id: visit, when: {page: {}}, points: 10}
triggers:
  - id: demo
    when: {event: Demo Requested}
    then:
      - notify: {channel: sales, template: demo}
      - start_sequence: follow-up
sequences:
  follow-up:
    steps:
      - wait: 1d
      - send: {channel: email, template: one}
"""


def leadrules(
    *args: str, cwd: Path, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.run(
        [sys.executable, "-m", "leadrules.engine.cli", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        env=env,
        timeout=120,
    )


def records(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.splitlines()]


def setup(tmp_path: Path) -> list[dict]:
    write_rules(tmp_path, RULES)
    return [
        page("u1", at(0)),
        track("u1", at(0, 1), "Demo Requested"),
        page("u2", at(0, 2)),
        page("u1", at(3)),
    ]


def test_replay_writes_decisions_as_json_lines_and_a_summary(tmp_path: Path) -> None:
    events = setup(tmp_path)
    write_events(tmp_path / "events.jsonl", events)
    done = leadrules("replay", "events.jsonl", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert records(done.stdout) == [
        {
            "at": at(0, 1),
            "prospect": "u1",
            "action": "notify",
            "rule": "demo",
            "channel": "sales",
            "template": "demo",
            "score": 10,
            "stage": "lead",
        },
        {
            "at": at(0, 1),
            "prospect": "u1",
            "action": "start_sequence",
            "rule": "demo",
            "sequence": "follow-up",
            "score": 10,
            "stage": "lead",
        },
        {
            "at": at(1, 1),
            "prospect": "u1",
            "action": "send",
            "rule": "sequence:follow-up",
            "channel": "email",
            "template": "one",
            "sequence": "follow-up",
            "step": 2,
            "score": 10,
            "stage": "lead",
        },
    ]
    summary = done.stderr.decode()
    assert "events: 4 processed" in summary and "prospects: 2" in summary


def test_replay_sorts_unsorted_input_from_several_files_gz_and_stdin(tmp_path: Path) -> None:
    events = setup(tmp_path)
    write_events(tmp_path / "a.jsonl", [events[3], events[0]])
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as handle:
        handle.write(json.dumps(events[2]) + "\n")
    stdin = (json.dumps(events[1]) + "\n").encode()
    done = leadrules(
        "replay", "a.jsonl", "b.jsonl.gz", "-", "--out", "out.jsonl", cwd=tmp_path, stdin=stdin
    )
    assert done.returncode == 0, done.stderr
    write_events(tmp_path / "sorted.jsonl", events)
    expected = leadrules("replay", "sorted.jsonl", cwd=tmp_path)
    assert records((tmp_path / "out.jsonl").read_bytes()) == records(expected.stdout)
    assert done.stdout == b""


def test_until_advances_time_and_fires_due_timers(tmp_path: Path) -> None:
    events = setup(tmp_path)[:2]
    write_events(tmp_path / "events.jsonl", events)
    short = leadrules("replay", "events.jsonl", cwd=tmp_path)
    assert [r["action"] for r in records(short.stdout)] == ["notify", "start_sequence"]
    long = leadrules("replay", "events.jsonl", "--until", at(5), cwd=tmp_path)
    assert [r["action"] for r in records(long.stdout)] == ["notify", "start_sequence", "send"]


def test_events_after_until_are_not_processed(tmp_path: Path) -> None:
    events = setup(tmp_path)
    write_events(tmp_path / "events.jsonl", events)
    done = leadrules("replay", "events.jsonl", "--until", at(0, 0, 30), cwd=tmp_path)
    assert records(done.stdout) == []
    assert "3 after --until" in done.stderr.decode()


def test_a_malformed_line_is_reported_and_skipped_and_the_exit_code_says_so(tmp_path: Path) -> None:
    events = setup(tmp_path)
    lines = [
        json.dumps(events[0]),
        "{not json",
        json.dumps({"type": "track", "userId": "u1"}),
        json.dumps(events[1]),
    ]
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    done = leadrules("replay", "events.jsonl", cwd=tmp_path)
    assert done.returncode == 3
    stderr = done.stderr.decode()
    assert "events.jsonl:2: not valid JSON" in stderr
    assert "events.jsonl:3: event: is required for track" in stderr
    assert [r["action"] for r in records(done.stdout)] == ["notify", "start_sequence"]
    strict = leadrules("replay", "events.jsonl", "--strict", cwd=tmp_path)
    assert strict.returncode == 3
    assert (
        "events.jsonl:2" in strict.stderr.decode()
        and "events.jsonl:3" not in strict.stderr.decode()
    )


def test_input_far_out_of_order_gives_the_same_decisions(tmp_path: Path) -> None:
    write_rules(tmp_path, RULES)
    events = [page(f"u{i % 50}", at(i / 100)) for i in range(2_000)]
    events += [track(f"u{i}", at(i / 10, 0, 1), "Demo Requested") for i in range(50)]
    events.sort(key=lambda e: e["timestamp"])
    write_events(tmp_path / "sorted.jsonl", events)
    write_events(tmp_path / "reversed.jsonl", list(reversed(events)))
    sorted_run = leadrules("replay", "sorted.jsonl", cwd=tmp_path)
    reversed_run = leadrules("replay", "reversed.jsonl", cwd=tmp_path)
    assert reversed_run.returncode == 0, reversed_run.stderr
    assert records(sorted_run.stdout) == records(reversed_run.stdout)
    assert len(records(sorted_run.stdout)) > 100


def test_records_are_ordered_by_at(tmp_path: Path) -> None:
    events = setup(tmp_path)
    write_events(tmp_path / "events.jsonl", events)
    done = leadrules("replay", "events.jsonl", "--until", at(9), cwd=tmp_path)
    ats = [r["at"] for r in records(done.stdout)]
    assert ats == sorted(ats)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    setup(tmp_path)
    done = leadrules("replay", "nope.jsonl", cwd=tmp_path)
    assert done.returncode == 1
    assert b"nope.jsonl: no such file" in done.stderr
    assert b"Traceback" not in done.stderr


def test_explain_shows_the_score_breakdown_history_enrolments_and_timers(tmp_path: Path) -> None:
    events = setup(tmp_path)
    write_events(tmp_path / "events.jsonl", events)
    done = leadrules("explain", "u1", "events.jsonl", "--at", at(0, 2), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["score"] == 10
    assert [(c["rule"], c["points"], c["event"]["path"]) for c in report["contributions"]] == [
        ("visit", 10, "/")
    ]
    assert [e["sequence"] for e in report["enrolments"]] == ["follow-up"]
    assert report["timers"] == [{"due": at(1, 1), "kind": "step", "name": "follow-up"}]
    text = leadrules("explain", "u1", "events.jsonl", cwd=tmp_path).stdout.decode()
    assert "score 20" in text and "visit" in text
    missing = leadrules("explain", "nobody", "events.jsonl", cwd=tmp_path)
    assert missing.returncode == 1 and b"no events for prospect 'nobody'" in missing.stderr
