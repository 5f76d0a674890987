"""The backtest at the terminal: the two rule sets side by side with the differences, the
best thresholds, and the prospects who become or stop being MQLs with each side's reasons."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

ROWS = (
    ("MQLs (distinct prospects)", "mqls", "int"),
    ("MQL stage changes", "mql_changes", "int"),
    ("positives (qualified or won)", "positives", "int"),
    ("true positives", "true_positives", "int"),
    ("precision", "precision", "pct"),
    ("recall", "recall", "pct"),
    ("alerts per week", "alerts_per_week", "float"),
    ("sends per week", "sends_per_week", "float"),
    ("sequences entered", "sequences_entered_total", "int"),
)


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "pct":
        return f"{value:.1%}"
    if kind == "float":
        return f"{value:,.1f}"
    if kind == "days":
        return f"{value:,.1f} d"
    return f"{value:,}"


def _diff(value: Any, kind: str) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "="
    if kind == "pct":
        return f"{value * 100:+.1f} pt"
    if kind in ("float", "days"):
        return f"{value:+,.1f}"
    return f"{value:+,}"


def _best(best: dict[str, Any]) -> str:
    if best["threshold"] is None:
        return "—"
    return (
        f"{best['threshold']} (P {_fmt(best['precision'], 'pct')}, R {_fmt(best['recall'], 'pct')})"
    )


def _why(side: dict[str, Any]) -> str:
    if side["mql"]:
        reasons = ", ".join(f"{r['rule']} {r['points']:+}" for r in side["reasons"][:3])
        return f"MQL {side['at'][:10]} at {side['score']}: {reasons}"
    peak = side["peak_score"]
    return "never scored" if peak is None else f"peak {peak} < {side['threshold']}"


def render(result: dict[str, Any], console: Console, flips: int = 10) -> None:
    base, cand = result["baseline"], result["candidate"]
    names = result["rule_sets"]
    table = Table(
        title=f"backtest: {result['events']:,} events, {result['prospects']:,} prospects, "
        f"{result['from'] or '-'} → {result['to'] or '-'}"
    )
    table.add_column("")
    table.add_column(f"baseline\n{names['baseline']}", justify="right")
    table.add_column(f"candidate\n{names['candidate']}", justify="right")
    table.add_column("change", justify="right")
    table.add_row(
        "MQL threshold", _fmt(base["mql_threshold"], "int"), _fmt(cand["mql_threshold"], "int"), ""
    )
    for label, key, kind in ROWS:
        diff = result["differences"].get(key)
        table.add_row(label, _fmt(base[key], kind), _fmt(cand[key], kind), _diff(diff, kind))
    for q in ("median", "p90"):
        a, b = base["time_to_mql_days"][q], cand["time_to_mql_days"][q]
        change = None if a is None or b is None else b - a
        table.add_row(f"time to MQL, {q}", _fmt(a, "days"), _fmt(b, "days"), _diff(change, "days"))
    reasons = sorted(set(base["rejected_by_reason"]) | set(cand["rejected_by_reason"]))
    for reason in reasons:
        a, b = base["rejected_by_reason"].get(reason, 0), cand["rejected_by_reason"].get(reason, 0)
        table.add_row(f"rejected after MQL: {reason}", f"{a:,}", f"{b:,}", _diff(b - a, "int"))
    sequences = sorted(set(base["sequences_entered"]) | set(cand["sequences_entered"]))
    for name in sequences:
        a, b = base["sequences_entered"].get(name, 0), cand["sequences_entered"].get(name, 0)
        table.add_row(f"  entered {name}", f"{a:,}", f"{b:,}", _diff(b - a, "int"))
    table.add_row(
        "best threshold (F1)", _best(base["best_threshold"]), _best(cand["best_threshold"]), ""
    )
    console.print(table)
    for title, key in (("become MQLs", "became_mql"), ("stop being MQLs", "stopped_being_mql")):
        items = result[key]
        if not items:
            continue
        shown = Table(title=f"{len(items):,} prospects {title} (first {min(flips, len(items))})")
        shown.add_column("prospect")
        shown.add_column("positive")
        shown.add_column("baseline")
        shown.add_column("candidate")
        for item in items[:flips]:
            shown.add_row(
                item["prospect"],
                "yes" if item["positive"] else "",
                _why(item["baseline"]),
                _why(item["candidate"]),
            )
        console.print(shown)
    for warning in result["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}")
