"""`backtest --html`: the two rule sets side by side, outcomes, F1 by threshold, weekly
volume, time to MQL and the prospects who flip, as one self-contained page
(engine/replay/report_html.py draws and inlines)."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from leadrules.engine.replay.report_html import BASE, CAND, _chart, _page, _pct, _show


def _f1(tp: list[int], mqls: list[int], positives: int) -> list[float]:
    return [
        2 * t / (m + positives) if m + positives else 0.0 for t, m in zip(tp, mqls, strict=True)
    ]


def backtest_html(result: dict[str, Any]) -> str:
    base, cand = result["baseline"], result["candidate"]
    names = result["rule_sets"]
    keys = ("mqls", "positives", "true_positives")
    outcomes = go.Figure(
        [
            go.Bar(
                name=f"baseline ({names['baseline']})",
                x=list(keys),
                y=[base[k] for k in keys],
                marker_color=BASE,
            ),
            go.Bar(
                name=f"candidate ({names['candidate']})",
                x=list(keys),
                y=[cand[k] for k in keys],
                marker_color=CAND,
            ),
        ]
    )
    curve = go.Figure()
    for label, side, color in (("baseline", base, BASE), ("candidate", cand, CAND)):
        c = side["threshold_curve"]
        curve.add_scatter(
            x=c["starts"],
            y=_f1(c["true_positives"], c["mqls"], side["positives"]),
            mode="lines",
            line_shape="hv",
            name=f"F1, {label}",
            line_color=color,
        )
    curve.update_xaxes(title="MQL threshold", range=[0, max(200, (base["mql_threshold"] or 0) * 2)])
    weekly = go.Figure()
    for label, side, color in (("baseline", base, BASE), ("candidate", cand, CAND)):
        weeks = [w["week"] for w in side["weekly"]]
        weekly.add_scatter(
            x=weeks,
            y=[w.get("mql", 0) for w in side["weekly"]],
            name=f"MQLs, {label}",
            line_color=color,
        )
        weekly.add_scatter(
            x=weeks,
            y=[w.get("send", 0) for w in side["weekly"]],
            name=f"sends, {label}",
            line={"color": color, "dash": "dot"},
        )
    ttm = go.Figure(
        [
            go.Bar(
                name="baseline",
                x=["median", "p90"],
                y=[base["time_to_mql_days"][q] for q in ("median", "p90")],
                marker_color=BASE,
            ),
            go.Bar(
                name="candidate",
                x=["median", "p90"],
                y=[cand["time_to_mql_days"][q] for q in ("median", "p90")],
                marker_color=CAND,
            ),
        ]
    )
    ttm.update_yaxes(title="days")
    rows = [
        [label, _show(base.get(k)), _show(cand.get(k)), _show(result["differences"].get(k))]
        for label, k in (
            ("MQLs", "mqls"),
            ("positives", "positives"),
            ("true positives", "true_positives"),
            ("precision", "precision"),
            ("recall", "recall"),
            ("alerts per week", "alerts_per_week"),
            ("sends per week", "sends_per_week"),
            ("sequences entered", "sequences_entered_total"),
        )
    ]
    rows.append(
        ["best threshold", _best(base["best_threshold"]), _best(cand["best_threshold"]), ""]
    )
    flips = [
        [f["prospect"], "yes" if f["positive"] else "", _why(f["baseline"]), _why(f["candidate"])]
        for f in (result["became_mql"][:25] + result["stopped_being_mql"][:25])
    ]
    sections: list[dict[str, Any]] = [
        {
            "id": "table",
            "title": "Side by side",
            "header": ["", "baseline", "candidate", "change"],
            "rows": rows,
        },
        {
            "id": "outcomes",
            "title": "MQLs against sales' outcomes",
            "chart": _chart(outcomes, "MQLs, positives, true positives"),
        },
        {
            "id": "threshold",
            "title": "F1 by MQL threshold",
            "chart": _chart(curve, "F1 if the history were replayed at each threshold"),
        },
        {
            "id": "weekly",
            "title": "Weekly volume",
            "chart": _chart(weekly, "MQLs and sends per week"),
        },
        {
            "id": "time-to-mql",
            "title": "Time to MQL",
            "chart": _chart(ttm, "days from first event to first MQL"),
        },
        {
            "id": "flips",
            "title": f"Prospects who become ({len(result['became_mql'])}) or stop being ({len(result['stopped_being_mql'])}) MQLs",
            "header": ["prospect", "positive", "baseline", "candidate"],
            "rows": flips,
        },
    ]
    subtitle = f"{result['events']:,} events, {result['prospects']:,} prospects, {result['from']} → {result['to']}"
    return _page(f"Backtest: {names['baseline']} → {names['candidate']}", subtitle, sections)


def _best(best: dict[str, Any]) -> str:
    if best["threshold"] is None:
        return "—"
    return (
        f"{best['threshold']} (precision {_pct(best['precision'])}, recall {_pct(best['recall'])})"
    )


def _why(side: dict[str, Any]) -> str:
    if side["mql"]:
        return f"MQL {side['at'][:10]} at {side['score']}: " + ", ".join(
            f"{r['rule']} {r['points']:+}" for r in side["reasons"][:3]
        )
    return (
        "never scored"
        if side["peak_score"] is None
        else f"peak {side['peak_score']} < {side['threshold']}"
    )
