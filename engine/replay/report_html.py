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


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.3f}"
    return f"{value:,}"


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
    accounts = result.get("accounts") or []
    if accounts:
        sections.append(
            {
                "id": "accounts",
                "title": f"Accounts ({len(accounts):,})",
                "note": "score: account fit plus the top prospects' scores, at the end",
                "header": ["account", "score", "fit", "stage", "members", "top", "MQLs"],
                "rows": [
                    [
                        a["account"],
                        _show(a["score"]),
                        _show(a["fit_points"]),
                        a["stage"] or "—",
                        _show(a["members"]),
                        ", ".join(a["top"]),
                        _show(a["mqls"]),
                    ]
                    for a in accounts[:50]
                ],
            }
        )
    subtitle = f"{result['events']:,} events, {result['prospects']:,} prospects, {result['from']} → {result['to']}"
    return _page("leadrules report", subtitle, sections)
