"""Stage, timer kind, ledger state and decision (outbox) status are `Literal` types, so a misspelt one
is a type error (mypy, `make typecheck`) rather than a prospect stuck in a stage nobody
handles. The first test runs the real type checker over a small probe module."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import get_args

from leadrules.engine.core.lifecycle import FEEDBACK
from leadrules.engine.core.ruleset import STAGES, Stage

ROOT = Path(__file__).resolve().parents[2]
RULES_DOC = ROOT / "docs" / "rules.md"  # the contract as users read it

PROBE = """
from leadrules.engine.core.ruleset import Stage
from leadrules.engine.core.state import LedgerEntry, ProspectState, StageChange, Timer
from leadrules.engine.daemon.dispatch import outbox
from leadrules.engine.daemon.store import DecisionRow, Store

state = ProspectState("p")
state.stage = "sql"
state.stage = "SQL"  # BAD
state.history.append(StageChange(1, "recycled", "lifecycle.recycled"))
state.history.append(StageChange(1, "rejected", "lifecycle.recycled"))  # BAD
Timer(0, "p", "absence", "t")
Timer(0, "p", "reminder", "t")  # BAD
entry = LedgerEntry("r", 5, 0, None, {})
entry.state = "cleared"
entry.state = "deleted"  # BAD
row = DecisionRow(key="k", at=0, prospect="p", action="notify", rule="r", record="{}",
                 next_attempt_at=0, created_at=0)
row.status = "dead"
row.status = "failed"  # BAD
outbox(Store("sqlite://"), "sent")
outbox(Store("sqlite://"), "delivered")  # BAD


def stage_of(text: str) -> Stage:
    return text  # BAD
"""


def test_the_type_checker_refuses_each_misspelt_value(tmp_path: Path) -> None:
    # mypy reads source trees, not the editable install's import hook: the same two links
    # as `make layout`.
    layout = tmp_path / "layout" / "leadrules"
    layout.mkdir(parents=True)
    (layout / "engine").symlink_to(ROOT / "engine")
    (layout / "adapters").symlink_to(ROOT / "adapters")
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent(PROBE))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--follow-imports=silent",
         "--cache-dir", str(ROOT / ".mypy_cache" / "probe"), str(probe)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "MYPYPATH": str(tmp_path / "layout")}, cwd=tmp_path,
    )  # fmt: skip
    flagged = {int(m) for m in re.findall(r"probe\.py:(\d+): error", result.stdout)}
    lines = probe.read_text().splitlines()
    bad = {i for i, line in enumerate(lines, 1) if line.endswith("# BAD")}
    assert flagged == bad, result.stdout + result.stderr


def test_the_stages_are_the_contracts_in_funnel_order() -> None:
    assert get_args(Stage) == STAGES
    line = next(t for t in RULES_DOC.read_text().splitlines() if t.startswith("Stages:"))
    assert tuple(re.findall(r"`(\w+)`", line)) == STAGES


def test_sales_feedback_moves_only_between_known_stages() -> None:
    for target, sources in FEEDBACK.values():
        assert target in STAGES and sources <= set(STAGES)


def test_the_outbox_command_refuses_a_status_that_does_not_exist(tmp_path: Path) -> None:
    def outbox(status: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "leadrules.engine.cli", "outbox", "--status", status,
             "--database-url", f"sqlite:///{tmp_path}/leadrules.db"],
            capture_output=True, text=True, timeout=120, cwd=ROOT,
        )  # fmt: skip

    wrong = outbox("failed")
    assert wrong.returncode == 2
    assert wrong.stderr.strip() == (
        "leadrules outbox: --status is one of pending, sent, dead, dropped, got 'failed'"
    )
    assert outbox("dead").returncode == 0
