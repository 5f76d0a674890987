"""`leadrules report [EVENTS...] [--json F] [--html F]`: the funnel metrics of a history (a
replay of the files, or of the daemon's event log, which the `report` command (engine/cli/) exports first)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from leadrules.engine.language.loader import load_rules
from leadrules.engine.replay.account_report import render_accounts
from leadrules.engine.replay.funnel import run_funnel
from leadrules.engine.replay.funnel_figures import figures, load_agreement
from leadrules.engine.replay.sources import Rejected, event_files

EXIT_OK, EXIT_REJECTED = 0, 3


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files",
        nargs="*",
        metavar="EVENTS",
        help="JSON Lines to replay; without files, the daemon's event log (its database)",
    )
    parser.add_argument("--rules", default="rules", metavar="DIR")
    parser.add_argument("--config", default="config", metavar="DIR")
    parser.add_argument("--database-url", help="the daemon's database (default from config)")
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON (- for stdout)")
    parser.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")
    parser.add_argument("--quiet", action="store_true", help="no tables on the terminal")
    parser.add_argument(
        "--shadow",
        action="store_true",
        help="what the shadow rule set (shadow: in config/leadrules.yaml) would have decided",
    )


def main(args: argparse.Namespace) -> int:
    rules, warnings = load_rules(Path(args.rules), Path(args.config), references="warn")
    for problem in warnings:
        print(f"warning: {problem}", file=sys.stderr)
    agreement = load_agreement(Path(args.config))
    sources = event_files(args.files)
    rejected: list[Rejected] = []

    def on_reject(item: Rejected) -> None:
        rejected.append(item)
        print(f"rejected: {item}", file=sys.stderr)

    try:
        run = run_funnel(sources, rules, on_reject=on_reject)
    finally:
        for source in sources:
            source.close()
    result = figures(run, agreement)
    if args.json:
        data = orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n"
        if args.json == "-":
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            Path(args.json).write_bytes(data)
    if args.html:
        from leadrules.engine.replay.report_html import report_html

        Path(args.html).write_text(report_html(result), encoding="utf-8")
    if not args.quiet:
        stream = sys.stderr if args.json == "-" else sys.stdout
        render(result, Console(file=stream, width=None if stream.isatty() else 120))
    return EXIT_REJECTED if rejected else EXIT_OK


def _n(value: Any, kind: str = "") -> str:
    if value is None:
        return "—"
    if kind == "pct":
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}"


def render(result: dict[str, Any], console: Console) -> None:
    main = Table(title=f"report: {result['events']:,} events, {result['prospects']:,} prospects")
    main.add_column("metric")
    main.add_column("value", justify="right")
    funnel = result["funnel"]
    main.add_row(
        "funnel mql → sal → sql → customer",
        " → ".join(_n(funnel[s]) for s in ("mql", "sal", "sql", "customer")),
    )
    lr = result["lead_response_hours"]
    main.add_row(
        "lead response (MQL → accepted), h: median / p90", f"{_n(lr['median'])} / {_n(lr['p90'])}"
    )
    sla = result["sla"]
    main.add_row(
        f"SLA breach rate (accept within {_n(sla['accept_within_hours'])} h)",
        _n(sla["breach_rate"], "pct"),
    )
    main.add_row("MQL → SAL acceptance", _n(result["mql_to_sal_rate"], "pct"))
    main.add_row("MQL → SQL conversion", _n(result["mql_to_sql_rate"], "pct"))
    v = result["velocity_days"]
    main.add_row(
        "velocity lead → customer, days: median / p90", f"{_n(v['median'])} / {_n(v['p90'])}"
    )
    for reason, n in result["rejections_by_reason"].items():
        main.add_row(f"rejected: {reason}", _n(n))
    fc = result["forecast"]
    main.add_row(
        "forecast from open MQLs/SALs/SQLs "
        + "/".join(_n(fc["open"][s]) for s in ("mql", "sal", "sql")),
        f"{fc['expected_sqls']:.1f} SQLs, {fc['expected_deals']:.1f} deals",
    )
    for name, rate in fc["rates"].items():
        main.add_row(f"  rate used: {name.replace('_', ' ')}", _n(rate, "pct"))
    console.print(main)
    rules = Table(title="each rule's contribution to MQLs")
    for column in ("rule", "MQLs", "share", "points"):
        rules.add_column(column, justify="left" if column == "rule" else "right")
    for row in result["rule_contribution"][:15]:
        rules.add_row(row["rule"], _n(row["mqls"]), _n(row["share"], "pct"), _n(row["points"]))
    console.print(rules)
    seqs = Table(title="sequences")
    for column in ("sequence", "enrolled", "exited by reply", "exited otherwise", "reached SQL"):
        seqs.add_column(column, justify="left" if column == "sequence" else "right")
    for name, row in result["sequences"].items():
        seqs.add_row(
            name,
            *(
                _n(row[k])
                for k in ("enrolled", "exited_by_reply", "exited_otherwise", "reached_sql")
            ),
        )
    console.print(seqs)
    influence = result["content_influence"]
    content = Table(title=f"content before {influence['deals']:,} won deals")
    for column in ("content", "first touch", "last touch", "linear"):
        content.add_column(column, justify="left" if column == "content" else "right")
    keys = list(
        dict.fromkeys([*influence["linear"], *influence["first_touch"], *influence["last_touch"]])
    )
    for key in keys[:15]:
        content.add_row(
            key,
            _n(influence["first_touch"].get(key, 0)),
            _n(influence["last_touch"].get(key, 0)),
            f"{influence['linear'].get(key, 0):.2f}",
        )
    console.print(content)
    marketing = result["marketing"]
    months = Table(title=f"MQLs per month (target {_n(marketing['mqls_per_month_target'])})")
    for column in ("month", "MQLs", "met"):
        months.add_column(column)
    for row in marketing["monthly"]:
        months.add_row(
            row["month"],
            _n(row["mqls"]),
            "—" if row["met"] is None else ("yes" if row["met"] else "no"),
        )
    console.print(months)
    render_accounts(result.get("accounts") or [], console)
