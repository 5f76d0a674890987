"""The backtest's answer as data: the `--json` document (docs/backtest.md), which the
terminal table and the HTML report are drawn from."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from leadrules.engine.replay.backtest import (
    US_PER_DAY,
    US_PER_WEEK,
    BacktestRun,
    Side,
    _earliest,
    _quantile,
    outcome_figures,
)
from leadrules.engine.replay.thresholds import Check, Curve, curve
from leadrules.engine.timefmt import format_iso

COMPARED = (
    "mqls",
    "positives",
    "true_positives",
    "precision",
    "recall",
    "mql_changes",
    "alerts_per_week",
    "sends_per_week",
    "sequences_entered_total",
)


def _best(curve_: Curve, own: int | None, figures: dict[str, Any]) -> dict[str, Any]:
    found = curve_.best()
    if found is None:  # no threshold finds a true positive: keep the rule set's own
        if own is None:
            return {"threshold": None, "precision": None, "recall": None}
        return {
            "threshold": own,
            "precision": figures["precision"],
            "recall": figures["recall"],
        }
    threshold, mqls, tps = found
    return {
        "threshold": threshold,
        "precision": tps / mqls,
        "recall": tps / curve_.positives,
    }


def _week_label(week: int) -> str:
    monday = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=week * 7 - 3)
    return monday.date().isoformat()


def _side(
    side: Side,
    resolve: Callable[[str], str],
    positives: dict[str, int],
    first_seen: dict[str, int],
    rejections: list[tuple[str, int, str]],
    weeks: float,
    warnings: list[str],
) -> tuple[dict[str, Any], dict[str, int], dict[str, list[Check]]]:
    first = _earliest(side.first_mql, resolve)
    figures = outcome_figures(first, positives, rejections)
    checks = side.checks.canonical(resolve)
    threshold_curve = curve(checks, positives)
    own = side.rules.lifecycle.mql_threshold
    figures["best_threshold"] = _best(threshold_curve, own, figures)
    if own is not None and threshold_curve.at(own) != (
        figures["mqls"],
        figures["true_positives"],
    ):
        warnings.append(
            f"{side.name}: the threshold curve at {own} gives (mqls, true positives) "
            f"{threshold_curve.at(own)}, the replay ({figures['mqls']}, "
            f"{figures['true_positives']}); best_threshold may be off"
        )
    days = [(at - first_seen.get(p, at)) / US_PER_DAY for p, at in first.items()]
    figures.update(
        {
            "mql_threshold": own,
            "mql_changes": sum(c["mql"] for c in side.weekly.values()),
            "time_to_mql_days": {"median": _quantile(days, 0.5), "p90": _quantile(days, 0.9)},
            "alerts_per_week": side.by_action.get("notify", 0) / weeks,
            "sends_per_week": side.by_action.get("send", 0) / weeks,
            "sequences_entered": dict(sorted(side.sequences.items())),
            "sequences_entered_total": sum(side.sequences.values()),
            "decisions": dict(sorted(side.by_action.items())),
            # Counts by name, so the document does not depend on which came first in a week
            # (the same with the history split across workers).
            "weekly": [
                {"week": _week_label(w), **dict(sorted(c.items()))}
                for w, c in sorted(side.weekly.items())
            ],
            "threshold_curve": {
                "starts": threshold_curve.starts,
                "mqls": threshold_curve.mqls,
                "true_positives": threshold_curve.tps,
            },
        }
    )
    return figures, first, checks


def _firsts(side: Side, resolve: Callable[[str], str]) -> dict[str, str]:
    """canonical id -> the raw id whose MQL came first."""
    best: dict[str, tuple[int, str]] = {}
    for raw, at in side.first_mql.items():
        canonical = resolve(raw)
        if canonical not in best or (at, raw) < best[canonical]:
            best[canonical] = (at, raw)
    return {canonical: raw for canonical, (_, raw) in best.items()}


def _detail(
    side: Side, canonical: str, firsts: dict[str, str], checks: dict[str, list[Check]]
) -> dict[str, Any]:
    """Why a prospect is (or is not) an MQL under one rule set."""
    if canonical in firsts:
        return {"mql": True, **side.mql_detail[firsts[canonical]]}
    peak = max((after for _, _, after in checks.get(canonical, [])), default=None)
    return {"mql": False, "peak_score": peak, "threshold": side.rules.lifecycle.mql_threshold}


def summarize(
    run: BacktestRun, names: tuple[str, str] = ("baseline", "candidate")
) -> dict[str, Any]:
    resolve = run.resolve
    stats = run.stats
    positives = _earliest(run.outcomes.first_positive, resolve)
    first_seen = _earliest(run.outcomes.first_seen, resolve)
    rejections = [(resolve(p), at, reason) for p, at, reason in run.outcomes.rejections]
    span = 0 if stats.first_at is None or stats.last_at is None else stats.last_at - stats.first_at
    weeks = max(1.0, span / US_PER_WEEK)
    warnings: list[str] = []
    base, base_first, base_checks = _side(
        run.baseline, resolve, positives, first_seen, rejections, weeks, warnings
    )
    cand, cand_first, cand_checks = _side(
        run.candidate, resolve, positives, first_seen, rejections, weeks, warnings
    )
    differences = {}
    for key in COMPARED:
        a, b = base.get(key), cand.get(key)
        differences[key] = None if a is None or b is None else b - a
    became = sorted(set(cand_first) - set(base_first))
    stopped = sorted(set(base_first) - set(cand_first))

    base_firsts, cand_firsts = _firsts(run.baseline, resolve), _firsts(run.candidate, resolve)

    def flip(prospect: str) -> dict[str, Any]:
        return {
            "prospect": prospect,
            "baseline": _detail(run.baseline, prospect, base_firsts, base_checks),
            "candidate": _detail(run.candidate, prospect, cand_firsts, cand_checks),
            "positive": prospect in positives,
        }

    return {
        "rule_sets": {"baseline": names[0], "candidate": names[1]},
        "events": stats.events,
        "duplicates": stats.duplicates,
        "prospects": len(first_seen),
        "from": None if stats.first_at is None else format_iso(stats.first_at),
        "to": None if stats.last_at is None else format_iso(stats.last_at),
        "weeks": weeks,
        "baseline": base,
        "candidate": cand,
        "differences": differences,
        "became_mql": [flip(p) for p in became],
        "stopped_being_mql": [flip(p) for p in stopped],
        "warnings": warnings,
    }
