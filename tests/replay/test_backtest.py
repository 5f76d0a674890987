"""`leadrules backtest`: the outcome figures by their definitions on a history written by
hand, the best threshold against real replays at each threshold, and the command."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import orjson
import pytest

from bench.generate import generate
from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.language.loader import load_rules
from leadrules.engine.replay.backtest import _earliest, outcome_figures, run_backtest
from leadrules.engine.replay.backtest_result import summarize
from leadrules.engine.replay.dry_run import replay
from leadrules.engine.replay.sources import EventFile
from leadrules.engine.replay.thresholds import curve
from leadrules.engine.timefmt import parse_timestamp

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "events.jsonl"
CLI = [sys.executable, "-m", "leadrules.engine.cli", "backtest"]

RULES = """\
lifecycle:
  mql_threshold: {threshold}
  on_reject:
    reset_score: true
scoring:
  rules:
    - id: demo
      when: {{event: Demo Requested}}
      points: 50
    - id: pricing
      when: {{page: {{path: /pricing}}}}
      points: 30
"""


def _rule_dir(root: Path, name: str, threshold: int) -> Path:
    directory = root / name / "rules"
    directory.mkdir(parents=True)
    (directory / "rules.yaml").write_text(RULES.format(threshold=threshold))
    (root / name / "config").mkdir()
    return root / name


def _msg(n: int, kind: str, day: int, who: dict[str, str], **extra: object) -> str:
    message = {"type": kind, "messageId": f"m{n}", "timestamp": f"2026-03-{day:02d}T10:00:00Z"}
    return json.dumps({**message, **who, **extra})


def _history(path: Path) -> Path:
    lines = [
        # anon-a reaches 80 (an MQL) before it identifies as u-a; u-a then wins: a true
        # positive, counted once under u-a.
        _msg(1, "page", 1, {"anonymousId": "anon-a"}, properties={"path": "/pricing"}),
        _msg(2, "track", 2, {"anonymousId": "anon-a"}, event="Demo Requested"),
        _msg(3, "identify", 3, {"anonymousId": "anon-a", "userId": "u-a"}, traits={}),
        _msg(4, "track", 4, {"userId": "u-a"}, event="Deal Won"),
        # u-b qualified, was rejected (before any MQL: not counted), then became an MQL:
        # a positive, not a true positive.
        _msg(5, "track", 1, {"userId": "u-b"}, event="Lead Qualified"),
        _msg(15, "track", 2, {"userId": "u-b"}, event="Lead Rejected", properties={"reason": "x"}),
        _msg(6, "track", 3, {"userId": "u-b"}, event="Demo Requested"),
        _msg(7, "page", 3, {"userId": "u-b"}, properties={"path": "/pricing"}),
        # u-c: an MQL that sales rejects (counted), twice (both counted).
        _msg(8, "track", 5, {"userId": "u-c"}, event="Demo Requested"),
        _msg(9, "page", 5, {"userId": "u-c"}, properties={"path": "/pricing"}),
        _msg(
            10,
            "track",
            6,
            {"userId": "u-c"},
            event="Lead Rejected",
            properties={"reason": "no-budget"},
        ),
        _msg(
            11,
            "track",
            7,
            {"userId": "u-c"},
            event="Lead Rejected",
            properties={"reason": "bad-timing"},
        ),
        # u-d: rejected without being an MQL (not counted); u-e: 50 points, an MQL only at
        # 50; u-f qualified and is never an MQL.
        _msg(
            12,
            "track",
            2,
            {"userId": "u-d"},
            event="Lead Rejected",
            properties={"reason": "not-a-fit"},
        ),
        _msg(14, "track", 3, {"userId": "u-e"}, event="Demo Requested"),
        _msg(13, "track", 3, {"userId": "u-f"}, event="Lead Qualified"),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_outcome_figures_follow_their_definitions(tmp_path: Path) -> None:
    events = _history(tmp_path / "events.jsonl")
    base = _rule_dir(tmp_path, "base", 80)
    cand = _rule_dir(tmp_path, "cand", 50)
    out = tmp_path / "bt.json"
    done = subprocess.run(
        [*CLI, "--baseline", str(base), "--candidate", str(cand), str(events), "--json", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    b, c = result["baseline"], result["candidate"]
    assert (b["mqls"], b["positives"], b["true_positives"]) == (3, 3, 1)
    assert b["precision"] == pytest.approx(1 / 3) and b["recall"] == pytest.approx(1 / 3)
    assert b["rejected_by_reason"] == {"bad-timing": 1, "no-budget": 1}
    # At 50 a demo request alone is an MQL: u-e too (not a positive).
    assert (c["mqls"], c["true_positives"]) == (4, 1)
    assert [f["prospect"] for f in result["became_mql"]] == ["u-e"]
    assert result["became_mql"][0]["baseline"] == {"mql": False, "peak_score": 50, "threshold": 80}
    assert result["differences"]["mqls"] == 1
    # Every threshold from 1 to 80 finds u-a before it won (tp 1); up to 50 u-e is an MQL
    # too. Highest F1 = 2 tp / (mqls + positives): 51 to 80; the lowest is reported.
    best = {"threshold": 51, "precision": pytest.approx(1 / 3), "recall": pytest.approx(1 / 3)}
    assert b["best_threshold"] == best and c["best_threshold"] == best
    assert "best threshold" in done.stdout and "u-e" in done.stdout


def test_no_denominator_gives_null(tmp_path: Path) -> None:
    events = tmp_path / "e.jsonl"
    events.write_text(_msg(1, "page", 1, {"userId": "u"}, properties={"path": "/blog"}) + "\n")
    base = _rule_dir(tmp_path, "base", 80)
    rules, _ = load_rules(base / "rules", base / "config")
    with _Open(events) as source:
        result = summarize(run_backtest([source], rules, rules))
    side = result["baseline"]
    assert side["precision"] is None and side["recall"] is None
    assert side["best_threshold"] == {"threshold": 80, "precision": None, "recall": None}


class _Open:
    def __init__(self, path: Path) -> None:
        self.source = EventFile(str(path))

    def __enter__(self) -> EventFile:
        return self.source

    def __exit__(self, *exc: object) -> None:
        self.source.close()


def _with_threshold(rules: RuleSet, threshold: int) -> RuleSet:
    return dataclasses.replace(
        rules, lifecycle=dataclasses.replace(rules.lifecycle, mql_threshold=threshold)
    )


def _replayed(path: Path, rules: RuleSet, positives: dict[str, int], rejections: list) -> dict:
    """The figures of a real replay under `rules`, from its decision records."""
    out = io.BytesIO()
    with _Open(path) as source:
        result = replay([source], rules, out)
    first: dict[str, int] = {}
    for line in out.getvalue().splitlines():
        record = orjson.loads(line)
        if record["action"] == "set_stage" and record["stage"] == "mql":
            first.setdefault(
                result.world.resolve(record["prospect"]), parse_timestamp(record["at"])
            )
    return outcome_figures(first, positives, rejections)


def test_best_threshold_agrees_with_real_replays(tmp_path: Path) -> None:
    """The example rules (expiring negative points, reset on reject, fit rules) over a
    generated history with identity merges: the threshold curve equals real replays."""
    events = tmp_path / "e.jsonl"
    events.write_text(
        "".join(json.dumps(m) + "\n" for m in generate(8000, 11, prospects=250, shuffle=0.0))
    )
    rules, _ = load_rules(ROOT / "rules", ROOT / "config", references="warn")
    with _Open(events) as source:
        run = run_backtest([source], rules, _with_threshold(rules, 60))
    resolve = run.resolve
    positives = _earliest(run.outcomes.first_positive, resolve)
    rejections = [(resolve(p), at, r) for p, at, r in run.outcomes.rejections]
    assert positives, "the generated history has outcomes"
    threshold_curve = curve(run.baseline.checks.canonical(resolve), positives)
    best = summarize(run)["baseline"]["best_threshold"]
    t = best["threshold"]
    probes = sorted({t - 1, t, t + 1, 20, 45, 60, 80, 100, 140, 200})
    f1 = {}
    for threshold in probes:
        real = _replayed(events, _with_threshold(rules, threshold), positives, rejections)
        assert threshold_curve.at(threshold) == (real["mqls"], real["true_positives"]), threshold
        f1[threshold] = Fraction(2 * real["true_positives"], real["mqls"] + len(positives))
    assert f1[t] == max(f1.values()) and f1[t - 1] < f1[t]  # the lowest of the best
    real = _replayed(events, _with_threshold(rules, t), positives, rejections)
    assert (best["precision"], best["recall"]) == (real["precision"], real["recall"])


def test_a_rules_folder_works_as_a_rule_set(tmp_path: Path) -> None:
    rules = tmp_path / "only-rules"
    shutil.copytree(ROOT / "rules", rules)
    done = subprocess.run(
        [
            *CLI,
            "--baseline",
            str(rules),
            "--candidate",
            str(ROOT),
            str(EXAMPLE),
            "--json",
            "-",
            "--quiet",
        ],
        capture_output=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["baseline"]["mqls"] == result["candidate"]["mqls"] > 0
    assert result["differences"]["mqls"] == 0 and not result["became_mql"]
