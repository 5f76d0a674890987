"""Generated hostile lines at the replay door: in-process (`replay.sources` through the dry
run) and through the real `leadrules replay` command. Never a traceback or a hang; every
rejected line named `file:line: field: message`; every other line replayed (events +
duplicates + rejected = lines). Counts are printed (`-s`) and written to
`build/fuzz/replay.json`; LEADRULES_FUZZ_REPLAY_CASES changes them.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadrules.engine.language.loader import load_rules
from leadrules.engine.replay.dry_run import replay
from leadrules.engine.replay.sources import EventFile, Rejected
from tests.hostile import RAW_BODIES, body_of, hostile_message, valid_message

ROOT = Path(__file__).resolve().parents[2]
CASES = int(os.environ.get("LEADRULES_FUZZ_REPLAY_CASES", "500"))  # files of ~20 lines
CLI_LINES = int(os.environ.get("LEADRULES_FUZZ_REPLAY_CLI_LINES", "2000"))
REJECTION = re.compile(r"^(?P<path>.+):(?P<line>\d+): (?P<reason>.+)$")
LINE_REASON = re.compile(r"^(not valid JSON: .+|[A-Za-z]+: .+)$")


def _line(value: Any) -> bytes:
    if isinstance(value, bytes):  # a raw line: garbage, kept on one line
        return value.replace(b"\n", b" ").replace(b"\r", b" ")
    return body_of(value)


def lines_of(tag: str) -> st.SearchStrategy[list[tuple[bool, bytes]]]:
    """(hostile?, line) pairs: valid messages with hostile lines among them."""
    hostile = st.one_of(hostile_message(tag), RAW_BODIES).map(_line)
    return st.lists(
        st.one_of(
            st.integers(0, 10**9).map(lambda n: (False, body_of(valid_message(tag, n)))),
            hostile.map(lambda line: (True, line)),
        ),
        min_size=10,
        max_size=30,
    )


def _expected(lines: list[tuple[bool, bytes]]) -> int:
    return sum(1 for _, line in lines if line.strip())


def test_generated_lines_in_process(tmp_path: Path) -> None:
    rules, _ = load_rules(ROOT / "rules", ROOT / "config", references="warn")
    path = tmp_path / "events.jsonl"
    counts = {"files": 0, "lines": 0, "hostile_lines": 0, "rejected": 0, "events": 0}

    @settings(
        max_examples=CASES,
        deadline=timedelta(seconds=20),
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(lines=lines_of("r"))
    def case(lines: list[tuple[bool, bytes]]) -> None:
        path.write_bytes(b"\n".join(line for _, line in lines) + b"\n")
        rejected: list[Rejected] = []
        result = replay([EventFile(str(path))], rules, io.BytesIO(), on_reject=rejected.append)
        stats = result.stats
        counts["files"] += 1
        counts["lines"] += len(lines)
        counts["hostile_lines"] += sum(1 for hostile, _ in lines if hostile)
        counts["rejected"] += len(rejected)
        counts["events"] += stats.events
        hostile_at = {n for n, (hostile, _) in enumerate(lines, 1) if hostile}
        for item in rejected:
            assert item.line in hostile_at, (item, lines[item.line - 1])  # valid never refused
            assert LINE_REASON.match(item.reason) and "Traceback" not in item.reason, item
            assert "\n" not in item.reason and len(item.reason) < 400, item
        # Nothing dropped silently: each line replayed, a duplicate, or rejected by name.
        assert stats.events + stats.duplicates + len(rejected) == _expected(lines)

    started = time.monotonic()
    case()
    counts["seconds"] = round(time.monotonic() - started, 1)
    print(f"\nreplay fuzz: {json.dumps(counts)}")
    out = ROOT / "build" / "fuzz"
    out.mkdir(parents=True, exist_ok=True)
    (out / "replay.json").write_text(json.dumps(counts) + "\n")
    assert counts["files"] >= CASES // 2 and counts["rejected"] > 0


def test_generated_lines_through_the_cli(tmp_path: Path) -> None:
    """One file of generated lines through `leadrules replay`: exit 3 (some rejected), one
    `rejected: file:line: field: message` per bad line on stderr, no traceback."""
    examples: list[list[tuple[bool, bytes]]] = []

    @settings(max_examples=max(1, CLI_LINES // 20), database=None, deadline=None)
    @given(lines=lines_of("cli"))
    def collect(lines: list[tuple[bool, bytes]]) -> None:
        examples.append(lines)

    collect()
    lines = [pair for example in examples for pair in example]
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(line for _, line in lines) + b"\n")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "leadrules.engine.cli", "replay", str(path), "--out", "-"],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        timeout=300,
    )
    stderr = result.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr, stderr[:3000]
    rejected = [
        line[len("rejected: ") :] for line in stderr.splitlines() if line.startswith("rejected: ")
    ]
    hostile_at = {n for n, (hostile, _) in enumerate(lines, 1) if hostile}
    for text in rejected:
        found = REJECTION.match(text)
        assert found and found["path"].endswith("hostile.jsonl"), text
        assert int(found["line"]) in hostile_at, text
    assert result.returncode == (3 if rejected else 0), stderr[-2000:]
    decisions = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    counts = {
        "lines": len(lines),
        "hostile_lines": len(hostile_at),
        "rejected": len(rejected),
        "decisions": len(decisions),
        "seconds": round(time.monotonic() - started, 1),
    }
    print(f"\nreplay fuzz (cli): {json.dumps(counts)}")
    out = ROOT / "build" / "fuzz"
    out.mkdir(parents=True, exist_ok=True)
    (out / "replay-cli.json").write_text(json.dumps(counts) + "\n")
    assert rejected and decisions  # bad lines refused by name, the valid ones decided on
