"""Generated hostile rule files at the `check` door: mutations of the example rules.

Each case takes one of the repository's rule files and deletes, duplicates, swaps, re-types
and re-indents lines, plants tags, anchors, aliases, merge keys, alias bombs, huge numbers and
catastrophic regexes, then runs the loader in-process. Whatever the file, `check` answers a
list of `path:line:col: message` problems (never another exception) within the hypothesis
deadline, and a file that passes also replays a few events (pathological strings included).
A smaller number of the same mutations goes through the real `leadrules check` in a
subprocess. The numbers of cases run are printed (`-s`) and written to `build/fuzz/check.json`
and `build/fuzz/check-cli.json`; LEADRULES_FUZZ_CASES and LEADRULES_FUZZ_CLI_CASES change them.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadrules.engine.errors import Problem, RuleError
from leadrules.engine.language.loader import check, load_rules
from leadrules.engine.replay.dry_run import replay
from leadrules.engine.replay.sources import EventFile

ROOT = Path(__file__).resolve().parents[2]
# rule files and the config files `run` reads, by their path under the project
EXAMPLES = {
    str(p.relative_to(ROOT)): p.read_text()
    for p in [*sorted((ROOT / "rules").glob("*.yaml")), *sorted((ROOT / "config").glob("*.yaml"))]
}
CASES = int(os.environ.get("LEADRULES_FUZZ_CASES", "2000"))

HOSTILE = [
    "9" * 5000,
    "99999999999999999999",
    "-9223372036854775809",
    "9223372036854775807",
    "1e400",
    "0x" + "f" * 30,
    "1:2:3:4:5",
    "~",
    "''",
    "[",
    "{",
    "]",
    "}",
    "&a",
    "*a",
    "*nope",
    "&a [*a]",
    "&b {x: *b}",
    "!foo 7d",
    "!!bool 7d",
    "!!int true",
    "!!float x",
    "!!timestamp hello",
    "!!map 1",
    "!!seq x",
    "!!str [1]",
    "!!binary zzz",
    "!!set {a}",
    "!!omap [a: 1]",
    "!!python/name:os.system",
    "!!python/object/apply:os.system [echo]",
    "{<<: [1, 2]}",
    "{<<: *a}",
    '{matches: "(a+)+$"}',
    '{matches: "(\\\\w+\\\\s?)+$"}',
    '{matches: "(a|aa)+$"}',
    '{matches: "a{99999999999}"}',
    '{matches: "(a{1000}){1000}"}',
    '{matches: "(?P<x>"}',
    '{matches: "[[:alpha:]]"}',
    "{glob: [1]}",
    "{in: 3}",
    "{not: {not: {not: 1}}}",
    "{at_least: .nan}",
    "{exists: maybe}",
    "0d",
    "99999999999999999999d",
    "1" * 30 + "w",
    "2026-13-45",
    "2026-03-01T10:00:00Z",
    "true",
    "null",
    "- x",
    "? [a]",
    "'\\x00'",
    '"\\uffff\\ud800"',
    "\t",
    "%YAML 1.1",
    "---",
    "...",
    "|",
    ">-",
]


def bomb(levels: int) -> str:
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.sampled_from(sorted(EXAMPLES)))
    lines = EXAMPLES[name].splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            lines = [""]
        i = draw(st.integers(0, len(lines) - 1))
        kind = draw(
            st.sampled_from(
                ["delete", "duplicate", "swap", "value", "key", "indent", "insert", "truncate"]
            )
        )
        line = lines[i]
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, line)
        elif kind == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], line
        elif kind == "value":  # replace what follows a `key:` (or the whole line) by hostile text
            head, sep, _ = line.partition(": ")
            token = draw(st.sampled_from(HOSTILE))
            lines[i] = f"{head}{sep}{token}" if sep else f"{line} {token}"
        elif kind == "key":
            token = draw(st.sampled_from(["<<", "? x", "*a", "&a k", "!foo k", "1", "null", "''"]))
            indent = len(line) - len(line.lstrip())
            lines[i] = " " * indent + token + ": " + line.strip().partition(": ")[2]
        elif kind == "indent":
            shift = draw(st.integers(-4, 4))
            lines[i] = " " * max(0, len(line) - len(line.lstrip()) + shift) + line.lstrip()
        elif kind == "insert":
            extra = draw(
                st.one_of(
                    st.sampled_from(HOSTILE),
                    st.just(bomb(draw(st.integers(2, 10)))),
                    st.text(max_size=40),
                )
            )
            lines.insert(i, extra)
        else:
            cut = draw(st.integers(0, len(line)))
            lines = [*lines[:i], line[:cut]]
    return name, "\n".join(lines) + "\n"


EVENTS = [
    {"type": "identify", "userId": "u1", "messageId": "m0", "timestamp": "2026-03-01T09:00:00Z",
     "traits": {"email": "a@b.example", "title": "VP " + "a" * 40 + "!", "company": {"size": 500}}},
    {"type": "page", "userId": "u1", "messageId": "m1", "timestamp": "2026-03-01T10:00:00Z",
     "properties": {"path": "/" + "a" * 30 + "!"}},
    {"type": "page", "userId": "u1", "messageId": "m2", "timestamp": "2026-03-01T10:01:00Z",
     "properties": {"path": "/pricing"}},
    {"type": "track", "userId": "u1", "messageId": "m3", "timestamp": "2026-03-01T10:02:00Z",
     "event": "Demo Requested", "properties": {"plan": "a" * 50}},
]  # fmt: skip


def test_mutated_example_rules_get_positioned_problems_only() -> None:
    # thousands of small writes and reads: on a RAM disk where there is one
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    work = Path(tempfile.mkdtemp(prefix="check-fuzz-", dir=base))
    try:
        _run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(work: Path) -> None:
    shutil.copytree(ROOT / "rules", work / "rules")
    shutil.copytree(ROOT / "config", work / "config")
    # The templates are not what is mutated here: plain ones of the same names keep each
    # case to the YAML, validation and compile path (the example templates take longer to
    # parse than the rules).
    for template in (work / "rules" / "templates").iterdir():
        template.write_text("Hi {{ traits.name }} ({{ score }})\n")
    events = work / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    counts = {"cases": 0, "refused": 0, "passed": 0, "replayed": 0, "problems": 0}

    @settings(
        max_examples=CASES,
        deadline=timedelta(seconds=2),
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(mutated())
    def case(mutation: tuple[str, str]) -> None:
        name, text = mutation
        target = work / name
        target.write_text(text)
        try:
            found = check(work / "rules", work / "config")
        finally:
            target.write_text(EXAMPLES[name])
            counts["cases"] += 1
        assert all(isinstance(p, Problem) for p in found)
        for p in found:
            assert p.path and p.line >= 1 and p.col >= 1 and p.message, p
            assert "Traceback" not in p.message and "\n" not in p.message, p
        counts["problems"] += len(found)
        if found:
            counts["refused"] += 1
            return
        counts["passed"] += 1
        target.write_text(text)
        try:
            rules, _ = load_rules(work / "rules", work / "config", references="warn")
            replay([EventFile(str(events))], rules, io.BytesIO(), until=1_780_000_000_000_000)
            counts["replayed"] += 1
        except RuleError as exc:  # check passed, so loading must too
            raise AssertionError(exc.problems) from None
        finally:
            target.write_text(EXAMPLES[name])

    started = time.monotonic()
    case()
    elapsed = time.monotonic() - started
    report = {**counts, "seconds": round(elapsed, 1)}
    print(f"\ncheck fuzz: {json.dumps(report)}")
    out = ROOT / "build" / "fuzz"
    out.mkdir(parents=True, exist_ok=True)
    (out / "check.json").write_text(json.dumps(report) + "\n")
    assert counts["cases"] >= CASES // 2  # hypothesis ran the cases, not a handful
    assert counts["refused"] and counts["passed"]  # both sides of the door were exercised


CLI_CASES = int(os.environ.get("LEADRULES_FUZZ_CLI_CASES", "30"))
POSITIONED = re.compile(r"^[^:\n]+:[0-9]+:[0-9]+: \S.*$")


def test_mutated_rules_through_the_real_command() -> None:
    """A few of the same mutations through `leadrules check` in a subprocess: exit 0 or 1,
    stdout only `path:line:col: message` lines, no traceback on stderr."""
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    work = Path(tempfile.mkdtemp(prefix="check-cli-fuzz-", dir=base))
    shutil.copytree(ROOT / "rules", work / "rules")
    shutil.copytree(ROOT / "config", work / "config")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    counts = {"cases": 0, "refused": 0}

    @settings(
        max_examples=CLI_CASES,
        deadline=None,  # a process start on a loaded machine; the run's timeout bounds it
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(mutated())
    def case(mutation: tuple[str, str]) -> None:
        name, text = mutation
        target = work / name
        target.write_text(text)
        try:
            done = subprocess.run(
                [sys.executable, "-m", "leadrules.engine.cli", "check"],
                cwd=work, env=env, capture_output=True, timeout=60, check=False,
            )  # fmt: skip
        finally:
            target.write_text(EXAMPLES[name])
            counts["cases"] += 1
        out, err = done.stdout.decode(), done.stderr.decode()
        assert done.returncode in (0, 1), err
        assert "Traceback" not in err, err
        lines = out.splitlines()
        assert all(POSITIONED.match(line) for line in lines), out
        assert (done.returncode == 1) == bool(lines)
        counts["refused"] += done.returncode

    try:
        started = time.monotonic()
        case()
        report = {**counts, "seconds": round(time.monotonic() - started, 1)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\ncheck fuzz (subprocess): {json.dumps(report)}")
    out = ROOT / "build" / "fuzz"
    out.mkdir(parents=True, exist_ok=True)
    (out / "check-cli.json").write_text(json.dumps(report) + "\n")
    assert counts["cases"] >= CLI_CASES // 2
