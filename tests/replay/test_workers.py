"""`leadrules replay --workers N`: the same bytes as one process, for any N.

Streams with identity merges (identify, alias, chains of both), duplicate messageIds (also
across prospects), events out of order and many events at one instant, so that records of
different prospects at the same `at` must come back in one process's order."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadrules.engine.errors import LeadrulesError
from leadrules.engine.language.loader import load_rules
from leadrules.engine.replay.dry_run import replay
from leadrules.engine.replay.partition import plan
from leadrules.engine.replay.sources import EventFile
from leadrules.engine.replay.workers import replay_workers
from leadrules.engine.timefmt import US_PER_S, format_iso, parse_timestamp

ROOT = Path(__file__).resolve().parents[2]
RULES, _ = load_rules(ROOT / "rules", ROOT / "config", references="warn")
TEMPLATES = [json.loads(line) for line in (ROOT / "examples" / "events.jsonl").open()]
T0 = parse_timestamp("2026-03-02T09:00:00Z")
HOUR = 3600 * US_PER_S


def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    options = ["--rules", str(ROOT / "rules"), "--config", str(ROOT / "config")]
    return subprocess.run(
        [sys.executable, "-m", "leadrules.engine.cli", "replay", *args, *options],
        capture_output=True,
        check=False,
    )


def test_generated_stream_gives_the_same_bytes_on_one_two_and_three_workers(
    tmp_path: Path,
) -> None:
    log = tmp_path / "events.jsonl"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.generate",
            "--events",
            "6000",
            "--prospects",
            "150",
            "--seed",
            "11",
            "--duplicate-frac",
            "0.05",
            "--shuffle-frac",
            "0.05",
            "--out",
            str(log),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    runs = {n: cli(str(log), "--workers", str(n)) for n in (1, 2, 3)}
    assert all(done.returncode == 0 for done in runs.values()), runs[2].stderr
    one = runs[1].stdout
    assert one.count(b"\n") > 50  # the stream makes decisions, at shared instants too
    assert runs[2].stdout == one
    assert runs[3].stdout == one

    def summary(done: subprocess.CompletedProcess[bytes]) -> list[bytes]:
        return [x for x in done.stderr.splitlines() if not x.startswith(b"speed:")]

    assert summary(runs[2]) == summary(runs[1])
    assert summary(runs[3]) == summary(runs[1])


def test_rejected_lines_are_reported_once_in_file_order_by_the_workers(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    lines = [json.dumps(t | {"messageId": f"m-{n}"}) for n, t in enumerate(TEMPLATES)]
    lines[3:3] = ["{not json", json.dumps({"type": "track", "userId": "u-9"})]
    log.write_text("\n".join(lines) + "\n")
    one, two = cli(str(log), "--workers", "1"), cli(str(log), "--workers", "2")
    assert one.returncode == two.returncode == 3
    assert one.stdout == two.stdout and one.stdout
    rejected = [x for x in two.stderr.splitlines() if x.startswith(b"rejected:")]
    assert rejected == [x for x in one.stderr.splitlines() if x.startswith(b"rejected:")]
    assert len(rejected) == 2 and b":4:" in rejected[0] and b":5:" in rejected[1]


@pytest.mark.parametrize(("scanners", "block"), [(1, 8192), (2, 1), (3, 1), (2, 2), (4, 3)])
def test_merged_identities_share_a_worker(tmp_path: Path, scanners: int, block: int) -> None:
    """Also when the lines that link two ids, or repeat a messageId, are read by different
    scanners of the partition pass (a block of 1 line: every line by the next scanner)."""
    log = tmp_path / "events.jsonl"
    rows = [
        {"type": "page", "anonymousId": "a1", "messageId": "1"},
        {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "2"},
        {"type": "alias", "userId": "u2", "previousId": "u1", "messageId": "3"},
        {"type": "page", "userId": "u2", "messageId": "4"},
        {"type": "page", "userId": "solo", "messageId": "5"},
        {"type": "page", "userId": "other", "messageId": "4"},  # a duplicate of 4
    ]
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    owners = list(plan([EventFile(str(log))], 8, scanners=scanners, block=block)[0])
    assert len(owners) == len(rows)
    assert len(set(owners[:4])) == 1
    assert owners[5] == owners[3]
    assert owners[4] != owners[0]


IDS = ["a1", "a2", "a3", "u1", "u2", "u3"]


@st.composite
def streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for n in range(draw(st.integers(5, 60))):
        template = dict(draw(st.sampled_from(TEMPLATES)))
        template.pop("userId", None)
        template.pop("anonymousId", None)
        kind = template["type"]
        user, anon = draw(st.sampled_from(IDS)), draw(st.sampled_from(IDS))
        if kind == "identify":
            template |= {"userId": user, "anonymousId": anon}
        elif kind == "alias":
            template |= {"userId": user, "previousId": anon}
        elif draw(st.booleans()):
            template["userId"] = user
        else:
            template["anonymousId"] = anon
        if draw(st.integers(0, 9)) == 0:
            template = {"type": "alias", "userId": user, "previousId": anon}
        # Whole days and 4 hours past them: timers (waits in days, the 4-hour SLA) fall due
        # at the instants of other prospects' events and of each other.
        at = draw(st.integers(0, 20)) * 24 + draw(st.sampled_from([0, 0, 4]))
        template["timestamp"] = format_iso(T0 + at * HOUR)
        template["messageId"] = f"m-{draw(st.integers(0, n))}"  # duplicates now and then
        out.append(template)
    return out


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=streams(), scanners=st.integers(2, 4), block=st.integers(1, 7))
def test_the_partition_pass_on_several_scanners_makes_the_plan_of_one(
    tmp_path: Path, rows: list[dict[str, Any]], scanners: int, block: int
) -> None:
    log = tmp_path / "events.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    other = tmp_path / "more.jsonl"  # a second file: each file is dealt in blocks anew
    other.write_text("\n".join(json.dumps(r) for r in reversed(rows)) + "\n")
    sources = [EventFile(str(log)), EventFile(str(other))]
    alone = plan(sources, 3, scanners=1)
    assert plan(sources, 3, scanners=scanners, block=block) == alone
    assert [len(owners) for owners in alone] == [len(rows), len(rows)]


def test_the_partition_pass_names_a_broken_gzip_file_from_any_scanner(tmp_path: Path) -> None:
    rows = [{"type": "page", "userId": f"u{n}", "messageId": str(n)} for n in range(4000)]
    whole = gzip.compress(("\n".join(json.dumps(r) for r in rows) + "\n").encode())
    log = tmp_path / "cut.jsonl.gz"
    log.write_bytes(whole[: len(whole) // 2])
    for scanners in (1, 2):
        with pytest.raises(LeadrulesError, match=r"cut.jsonl.gz: not valid gzip after line \d+"):
            plan([EventFile(str(log))], 2, scanners=scanners, block=100)


def _replay(log: Path, workers: int) -> tuple[bytes, Any]:
    """The records and the statistics, or the error the replay stopped with."""
    buffer = io.BytesIO()
    source = EventFile(str(log))
    try:
        if workers == 1:
            result = replay([source], RULES, buffer)
        else:
            result = replay_workers([source], RULES, buffer, workers=workers)
    except LeadrulesError as exc:
        return str(exc).encode(), None
    return buffer.getvalue(), result.stats


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=streams())
def test_any_stream_gives_the_same_bytes_on_two_workers(
    tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    log = tmp_path / "events.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    one, stats_one = _replay(log, 1)
    two, stats_two = _replay(log, 2)
    assert stats_one is not None, one.decode()  # no stream makes evaluation fail
    assert two == one
    for name in ("events", "duplicates", "timers", "decisions", "mqls", "prospects"):
        assert getattr(stats_two, name) == getattr(stats_one, name), name
    assert stats_two.by_rule == stats_one.by_rule


def test_timers_of_many_prospects_due_at_one_instant_keep_one_process_order(
    tmp_path: Path,
) -> None:
    """The example story told by eight prospects at the same instants: their SLA breaches
    and sequence steps fall due together, in the order the events that scheduled them were
    evaluated, and events at such an instant come before them."""
    rows = []
    for k in reversed(range(8)):
        for n, template in enumerate(TEMPLATES):
            row = dict(template)
            for field in ("userId", "anonymousId", "previousId"):
                if field in row:
                    row[field] = f"{row[field]}-{k}"
            row["messageId"] = f"m-{k}-{n}"
            rows.append(row)
    # Cara's story told by zed four hours later: zed's demo request (an MQL and its alerts)
    # is an event at the instant the eight SLA breaches fall due, so it comes first.
    cara = [t for t in TEMPLATES if t.get("userId") == "u-cara"][:3]  # identify, demo page, request
    assert cara[-1].get("event") == "Demo Requested"
    for template in cara:
        at = parse_timestamp(template["timestamp"]) + 4 * HOUR
        rows.append(template | {"userId": "zed", "timestamp": format_iso(at)})
        rows[-1]["messageId"] = f"zed-{at}"
    log = tmp_path / "events.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    one, _ = _replay(log, 1)
    records = [json.loads(x) for x in one.splitlines()]
    at = [r for r in records if r["at"] == "2026-03-09T17:03:00Z"]
    breaches = [r for r in at if r["rule"] == "lifecycle.sla"]
    assert len(breaches) == 8  # eight timers due at one instant, in several workers
    assert at[0]["prospect"] == "zed"  # the event at that instant before them
    for workers in (2, 3):
        assert _replay(log, workers)[0] == one


def test_progress_counts_the_partition_pass_and_every_workers_reading(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    log.write_text("\n".join(json.dumps(t) for t in TEMPLATES) + "\n")
    seen: list[int] = []
    replay_workers([EventFile(str(log))], RULES, io.BytesIO(), workers=2, on_bytes=seen.append)
    assert sum(seen) == 2 * log.stat().st_size
