"""Self-contained HTML for `backtest --html` and `report --html`: plotly charts with
plotly.js inlined once, and a Content-Security-Policy that forbids every request (`default-src
'none'`), so the file opens offline and asks no other host for anything."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import plotly.graph_objects as go
from jinja2 import Environment, PackageLoader, select_autoescape
from plotly.offline import get_plotlyjs

CONFIG = {"displaylogo": False, "responsive": True}
BASE, CAND = "#4c78a8", "#f58518"


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(
        loader=PackageLoader("leadrules.engine.replay", "templates"),
        autoescape=select_autoescape(["html"]),
    )


def _chart(fig: go.Figure, title: str) -> str:
    fig.update_layout(title=title, margin={"t": 50, "l": 60, "r": 20, "b": 50}, height=380)
    html: str = fig.to_html(full_html=False, include_plotlyjs=False, config=CONFIG)
    return html


def _page(title: str, subtitle: str, sections: Iterable[dict[str, Any]]) -> str:
    template = _env().get_template("report.html")
    return template.render(
        title=title, subtitle=subtitle, sections=list(sections), plotly_js=get_plotlyjs()
    )


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


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


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.3f}"
    return f"{value:,}"


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


def report_html(result: dict[str, Any]) -> str:
    stages = ("mql", "sal", "sql", "customer")
    funnel = go.Figure(go.Funnel(y=list(stages), x=[result["funnel"][s] for s in stages]))
    scores = go.Figure()
    for outcome, color in (("won", "#54a24b"), ("lost", "#e45756")):
        scores.add_histogram(
            x=result["outcome_scores"][outcome], name=outcome, marker_color=color, opacity=0.7
        )
    scores.update_layout(barmode="overlay")
    scores.update_xaxes(title="score at the deal's outcome")
    ttm = go.Figure(go.Histogram(x=result["distributions"]["time_to_mql_days"], marker_color=BASE))
    ttm.update_xaxes(title="days from first event to first MQL")
    weeks = [w["week"] for w in result["weekly"]]
    weekly = go.Figure(
        [
            go.Bar(
                x=weeks,
                y=[w.get("mql", 0) for w in result["weekly"]],
                name="MQLs",
                marker_color=BASE,
            ),
            go.Scatter(
                x=weeks,
                y=[w.get("send", 0) for w in result["weekly"]],
                name="sends",
                line_color=CAND,
                yaxis="y2",
            ),
        ]
    )
    weekly.update_layout(yaxis2={"overlaying": "y", "side": "right", "title": "sends"})
    influence = result["content_influence"]
    linear = influence["linear"]
    content = go.Figure(
        go.Bar(
            x=list(linear.values())[::-1], y=list(linear)[::-1], orientation="h", marker_color=BASE
        )
    )
    months = result["marketing"]["monthly"]
    monthly = go.Figure(
        go.Bar(x=[m["month"] for m in months], y=[m["mqls"] for m in months], name="MQLs")
    )
    target = result["marketing"]["mqls_per_month_target"]
    if target is not None:
        monthly.add_scatter(
            x=[m["month"] for m in months], y=[target] * len(months), name="target", mode="lines"
        )
    sla, lr, v, fc = (
        result["sla"],
        result["lead_response_hours"],
        result["velocity_days"],
        result["forecast"],
    )
    rows = [
        [
            "lead response, MQL → accepted (h): median / p90",
            f"{_show(lr['median'])} / {_show(lr['p90'])}",
        ],
        ["SLA breach rate", _pct(sla["breach_rate"])],
        ["MQL → SAL acceptance", _pct(result["mql_to_sal_rate"])],
        ["MQL → SQL conversion", _pct(result["mql_to_sql_rate"])],
        [
            "velocity lead → customer (days): median / p90",
            f"{_show(v['median'])} / {_show(v['p90'])}",
        ],
        [
            "forecast: SQLs / deals from open MQLs, SALs, SQLs",
            f"{fc['expected_sqls']:.1f} / {fc['expected_deals']:.1f}",
        ],
        *[[f"rejected: {k}", _show(n)] for k, n in result["rejections_by_reason"].items()],
    ]
    contribution = [
        [r["rule"], _show(r["mqls"]), _pct(r["share"]), _show(r["points"])]
        for r in result["rule_contribution"]
    ]
    sequences = [
        [
            name,
            *(
                _show(s[k])
                for k in ("enrolled", "exited_by_reply", "exited_otherwise", "reached_sql")
            ),
        ]
        for name, s in result["sequences"].items()
    ]
    sections: list[dict[str, Any]] = [
        {"id": "figures", "title": "The agreement", "header": ["metric", "value"], "rows": rows},
        {
            "id": "funnel",
            "title": "Funnel",
            "chart": _chart(funnel, "prospects reaching each stage"),
        },
        {
            "id": "scores",
            "title": "Score of won and lost deals",
            "chart": _chart(scores, "score distribution at the outcome"),
        },
        {"id": "time-to-mql", "title": "Time to MQL", "chart": _chart(ttm, "days to first MQL")},
        {
            "id": "weekly",
            "title": "Weekly volume",
            "chart": _chart(weekly, "MQLs and sends per week"),
        },
        {
            "id": "monthly",
            "title": "Marketing's MQLs per month",
            "chart": _chart(monthly, "MQLs per month against the target"),
        },
        {
            "id": "content",
            "title": f"Content before {influence['deals']} won deals",
            "note": "linear attribution: each touch before the deal gets an equal share",
            "chart": _chart(content, "linear attribution"),
        },
        {
            "id": "rules",
            "title": "Each rule's contribution to MQLs",
            "header": ["rule", "MQLs", "share", "points"],
            "rows": contribution,
        },
        {
            "id": "sequences",
            "title": "Sequences",
            "header": [
                "sequence",
                "enrolled",
                "exited by reply",
                "exited otherwise",
                "reached SQL",
            ],
            "rows": sequences,
        },
    ]
    subtitle = f"{result['events']:,} events, {result['prospects']:,} prospects, {result['from']} → {result['to']}"
    return _page("leadrules report", subtitle, sections)
