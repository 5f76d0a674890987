"""Accounts in `leadrules report`: each account's score, fit, members and account MQLs at the
end of the history, highest score first (docs/rules.md, "Accounts")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from leadrules.engine.core.account_state import AccountState
from leadrules.engine.core.accounts import account_scores, ranked_members
from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.core.state import ProspectState
from leadrules.engine.timefmt import format_iso

SHOWN = 50  # accounts in the terminal table and the HTML page (the JSON has them all)


def account_figures(
    states: Mapping[str, ProspectState],
    accounts: Mapping[str, AccountState],
    rules: RuleSet,
    at: int,
) -> list[dict[str, Any]]:
    """One row per account: score, fit points, stage, members, the members that count, the
    account MQLs (count and first). Without account rules: the prospects' top three."""
    rows: list[dict[str, Any]] = []
    if rules.accounts is not None:
        top = rules.accounts.top
        for account in accounts.values():
            ranked = ranked_members(states, account, at)
            rows.append(
                {
                    "account": account.id,
                    "score": account.fit_points + sum(p for p, _ in ranked[:top]),
                    "fit_points": account.fit_points,
                    "stage": account.stage,
                    "members": len(ranked),
                    "top": [prospect for _, prospect in ranked[:top]],
                    "mqls": len(account.mqls),
                    "first_mql": format_iso(account.mqls[0]) if account.mqls else None,
                }
            )
    else:
        for name, row in account_scores(states.values(), at).items():
            members = row["prospects"]
            rows.append(
                {
                    "account": name,
                    "score": row["score"],
                    "fit_points": 0,
                    "stage": None,
                    "members": len(members),
                    "top": [m["prospect"] for m in members[:3]],
                    "mqls": 0,
                    "first_mql": None,
                }
            )
    rows.sort(key=lambda row: (-row["score"], row["account"]))
    return rows


def render_accounts(rows: list[dict[str, Any]], console: Console) -> None:
    if not rows:
        return
    mqls = sum(row["mqls"] for row in rows)
    table = Table(title=f"accounts: {len(rows):,}, account MQLs: {mqls:,}")
    for column in ("account", "score", "fit", "stage", "members", "top prospects", "MQLs"):
        table.add_column(
            column, justify="left" if column in ("account", "top prospects") else "right"
        )
    for row in rows[:SHOWN]:
        table.add_row(
            row["account"],
            f"{row['score']:,}",
            f"{row['fit_points']:,}",
            row["stage"] or "—",
            f"{row['members']:,}",
            ", ".join(row["top"]),
            f"{row['mqls']:,}",
        )
    console.print(table)
