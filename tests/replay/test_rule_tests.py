"""`leadrules test`: rule tests run as replays, through the real command line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from leadrules.engine.language.loader import check, load_rules
from leadrules.engine.language.schema import json_schema

ROOT = Path(__file__).resolve().parents[2]

PASSING = """\
name: pricing three times alerts sales
events:
  - {type: page, userId: u1, timestamp: "2026-03-01T10:00:00Z", properties: {path: /pricing}}
  - {type: page, userId: u1, timestamp: "2026-03-02T10:00:00Z", properties: {path: /pricing}}
  - {type: page, userId: u1, timestamp: "2026-03-03T10:00:00Z", properties: {path: /pricing}}
until: "2026-03-04T00:00:00Z"
expect:
  decisions:
    - {action: notify, rule: pricing-page-3x, prospect: u1}
  exactly: false
  prospects:
    u1: {stage: lead}
"""


def _leadrules(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "leadrules.engine.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def playbook(tmp_path: Path) -> Path:
    """A copy of the example playbook (rules and config) whose tests a test may change."""
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path


def test_the_example_playbook_ships_tests_for_its_story_and_they_pass() -> None:
    assert sorted(p.name for p in (ROOT / "rules" / "tests").glob("*.yaml"))
    done = _leadrules(ROOT, "test")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 failed" in done.stderr
    assert "FAIL" not in done.stdout


def test_exit_0_when_all_pass(playbook: Path) -> None:
    (playbook / "t.yaml").write_text(PASSING)
    done = _leadrules(playbook, "test", "t.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok   t.yaml: pricing three times alerts sales" in done.stdout


def test_exit_1_with_the_file_line_and_a_diff_of_expected_vs_actual(playbook: Path) -> None:
    (playbook / "t.yaml").write_text(PASSING.replace("rule: pricing-page-3x", "rule: demo-request"))
    done = _leadrules(playbook, "test", "t.yaml")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "t.yaml:9: expected decision not found" in done.stdout
    assert '-{"action":"notify","rule":"demo-request","prospect":"u1"}' in done.stdout
    assert '+{"action":"notify","rule":"pricing-page-3x","prospect":"u1"}' in done.stdout


def test_exactly_no_decision_other_than_those_listed(playbook: Path) -> None:
    (playbook / "t.yaml").write_text(PASSING.replace("exactly: false", "exactly: true"))
    done = _leadrules(playbook, "test", "t.yaml")
    assert done.returncode == 1  # the trigger also starts a sequence and sends its first step
    assert "exactly: 3 decision(s), 1 expected" in done.stdout


def test_prospects_state_at_the_end_or_at_until(playbook: Path) -> None:
    (playbook / "t.yaml").write_text(PASSING.replace("u1: {stage: lead}", "u1: {score: 44}"))
    done = _leadrules(playbook, "test", "t.yaml")
    assert done.returncode == 1
    assert "t.yaml:12: prospect 'u1': expected" in done.stdout
    assert '{"score":30}' in done.stdout  # three pricing visits of 10 points each


def test_exit_2_when_the_test_file_is_invalid_with_positioned_problems(playbook: Path) -> None:
    (playbook / "t.yaml").write_text(PASSING.replace("exactly: false", "exactley: false"))
    done = _leadrules(playbook, "test", "t.yaml")
    assert done.returncode == 2
    assert "t.yaml:10:3: unknown key 'exactley' (did you mean 'exactly'?)" in done.stdout


def test_exit_2_when_an_event_or_record_key_is_invalid(playbook: Path) -> None:
    bad = PASSING.replace(
        "type: page, userId: u1, timestamp", "type: pageview, userId: u1, timestamp", 1
    )
    bad = bad.replace("{action: notify,", "{acton: notify,")
    (playbook / "t.yaml").write_text(bad)
    done = _leadrules(playbook, "test", "t.yaml")
    assert done.returncode == 2
    assert "t.yaml:3:" in done.stdout and "type: must be one of" in done.stdout
    assert "t.yaml:9:8: unknown record key 'acton'" in done.stdout


def test_exit_2_when_the_rules_are_invalid(playbook: Path) -> None:
    path = playbook / "rules" / "triggers.yaml"
    path.write_text(path.read_text().replace("cooldown: 30d", "cooldown: 30days"))
    done = _leadrules(playbook, "test")
    assert done.returncode == 2
    assert "rules/triggers.yaml:" in done.stdout


def test_check_also_validates_test_files(playbook: Path) -> None:
    (playbook / "rules" / "tests" / "broken.yaml").write_text("name: x\nevents: []\n")
    problems = check(playbook / "rules", playbook / "config")
    assert len(problems) == 1
    assert str(problems[0]).endswith("rules/tests/broken.yaml:1:1: missing key 'expect'")


def test_files_under_rules_tests_are_not_loaded_as_rule_files(playbook: Path) -> None:
    rules, _ = load_rules(playbook / "rules", playbook / "config")
    assert check(playbook / "rules", playbook / "config") == []
    assert [t.id for t in rules.triggers] == [
        "buying-committee",  # rules/accounts.yaml sorts first
        "pricing-page-3x",
        "demo-request",
        "case-study-video",
        "guide-then-silence",
    ]


def test_the_json_schema_describes_test_files() -> None:
    defs = json_schema()["$defs"]
    assert set(defs["RuleTestFile"]["properties"]) == {
        "name",
        "description",
        "events",
        "until",
        "expect",
    }
    assert set(defs["Expect"]["properties"]) == {"decisions", "exactly", "prospects", "accounts"}
