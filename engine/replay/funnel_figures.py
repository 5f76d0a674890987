"""The figures marketing and sales agree on, from one funnel pass (engine/replay/funnel.py).
Definitions: docs/backtest.md, "The report". Durations: response time in hours, velocity
and time to MQL in days; rates are None when their denominator is 0."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from leadrules.engine.core.send_windows import sla_due
from leadrules.engine.errors import ConfigError, Problem
from leadrules.engine.replay.account_report import account_figures
from leadrules.engine.replay.backtest import US_PER_DAY, _quantile, _ratio
from leadrules.engine.replay.funnel import FunnelRun
from leadrules.engine.timefmt import format_iso, parse_duration

US_PER_HOUR = 3_600_000_000


def load_agreement(config_dir: Path) -> dict[str, Any]:
    """`config/agreement.yaml` (optional): `marketing: {mqls_per_month: N}` and
    `sales: {accept_within: 4h}` (default: the lifecycle's `sla.accept_within`)."""
    path = Path(config_dir) / "agreement.yaml"
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out: dict[str, Any] = {}
    target = (data.get("marketing") or {}).get("mqls_per_month")
    if target is not None:
        if not isinstance(target, int) or isinstance(target, bool) or target < 0:
            raise ConfigError(
                [Problem(str(path), 1, 1, "marketing.mqls_per_month: expected a whole number >= 0")]
            )
        out["mqls_per_month"] = target
    within = (data.get("sales") or {}).get("accept_within")
    if within is not None:
        try:
            out["accept_within_us"] = parse_duration(within)
        except ValueError as exc:
            raise ConfigError([Problem(str(path), 1, 1, f"sales.accept_within: {exc}")]) from None
    return out


def _spread(values: list[float]) -> dict[str, float | None]:
    return {"median": _quantile(values, 0.5), "p90": _quantile(values, 0.9), "n": len(values)}


def _credit(items: list[tuple[int, str]]) -> tuple[str, str, dict[str, float]]:
    linear: dict[str, float] = defaultdict(float)
    for _, key in items:
        linear[key] += 1 / len(items)
    return items[0][1], items[-1][1], linear


def _weekly(days: dict[str, Counter[str]]) -> list[dict[str, Any]]:
    """Day counts summed into weeks starting on Monday."""
    weeks: dict[str, Counter[str]] = defaultdict(Counter)
    for day, counts in days.items():
        moment = date.fromisoformat(day)
        weeks[(moment - timedelta(days=moment.weekday())).isoformat()].update(counts)
    return [{"week": w, **dict(c)} for w, c in sorted(weeks.items())]


def figures(run: FunnelRun, agreement: dict[str, Any]) -> dict[str, Any]:
    funnel, resolve = run.funnel, run.resolve
    end = run.stats.last_at or 0
    stages: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for raw, changes in funnel.stages.items():
        stages[resolve(raw)].extend(changes)
    first_seen: dict[str, int] = {}
    for raw, at in funnel.first_seen.items():
        c = resolve(raw)
        first_seen[c] = min(at, first_seen.get(c, at))
    within = agreement.get("accept_within_us", funnel.rules.lifecycle.sla_accept_within_us)
    business_hours = funnel.rules.lifecycle.sla_business_hours

    response, velocity, to_mql = [], [], []
    episodes = breaches = decided = 0
    reached: dict[str, set[str]] = defaultdict(set)  # stage -> prospects
    after: dict[tuple[str, str], set[str]] = defaultdict(set)  # (from, to) -> prospects
    for prospect, changes in stages.items():
        changes.sort()
        seen_at: dict[str, int] = {}
        for i, (at, stage) in enumerate(changes):
            reached[stage].add(prospect)
            seen_at.setdefault(stage, at)
            for earlier in seen_at:
                if earlier != stage:
                    after[(earlier, stage)].add(prospect)
            if stage != "mql":
                continue
            episodes += 1
            following = changes[i + 1] if i + 1 < len(changes) else None
            if following is not None and following[1] == "sal":
                response.append((following[0] - at) / US_PER_HOUR)
            if within is not None:
                # the SLA's end as the timer counts it (business hours when set)
                due = sla_due(at, within, business_hours)
                answered = following[0] if following is not None else None
                if answered is not None or end > due:
                    decided += 1
                    if (answered if answered is not None else end) > due:
                        breaches += 1
        if "customer" in seen_at and prospect in first_seen:
            velocity.append((seen_at["customer"] - first_seen[prospect]) / US_PER_DAY)
        if "mql" in seen_at and prospect in first_seen:
            to_mql.append((seen_at["mql"] - first_seen[prospect]) / US_PER_DAY)

    mqls = len(reached["mql"])

    def rate(a: str, b: str) -> float | None:
        return _ratio(len(after[(a, b)]), len(reached[a]))

    open_now = Counter(state.stage for state in run.end_states.values())
    rates = {
        "mql_to_sql": rate("mql", "sql"),
        "mql_to_customer": rate("mql", "customer"),
        "sal_to_sql": rate("sal", "sql"),
        "sal_to_customer": rate("sal", "customer"),
        "sql_to_customer": rate("sql", "customer"),
    }
    r = {k: v or 0.0 for k, v in rates.items()}
    forecast = {
        "open": {s: open_now.get(s, 0) for s in ("mql", "sal", "sql")},
        "rates": rates,
        "expected_sqls": open_now.get("mql", 0) * r["mql_to_sql"]
        + open_now.get("sal", 0) * r["sal_to_sql"],
        "expected_deals": open_now.get("mql", 0) * r["mql_to_customer"]
        + open_now.get("sal", 0) * r["sal_to_customer"]
        + open_now.get("sql", 0) * r["sql_to_customer"],
    }

    enrolled_at: dict[str, dict[str, int]] = {}
    sequences = {}
    for name, starts in sorted(funnel.enrolled.items()):
        firsts: dict[str, int] = {}
        for raw, at in starts:
            c = resolve(raw)
            firsts[c] = min(at, firsts.get(c, at))
        enrolled_at[name] = firsts
        sql_after = sum(
            1
            for c, at in firsts.items()
            if any(s == "sql" and t >= at for t, s in stages.get(c, []))
        )
        exits = funnel.exits.get(name, Counter())
        sequences[name] = {
            "enrolled": len(starts),
            "exited_by_reply": exits.get("Email Replied", 0),
            "exited_otherwise": sum(exits.values()) - exits.get("Email Replied", 0),
            "reached_sql": sql_after,
        }

    touches: dict[str, list[tuple[int, str]]] = defaultdict(list)
    deals: dict[str, int] = {}
    for raw, at in funnel.deals.items():
        c = resolve(raw)
        deals[c] = min(at, deals.get(c, at))
    for raw, items in funnel.touches.items():
        c = resolve(raw)
        if c in deals:
            touches[c].extend(items)
    first_touch: Counter[str] = Counter()
    last_touch: Counter[str] = Counter()
    linear: dict[str, float] = defaultdict(float)
    for c, won in deals.items():
        before = sorted(t for t in touches.get(c, []) if t[0] <= won)
        if not before:
            continue
        first, last, shares = _credit(before)
        first_touch[first] += 1
        last_touch[last] += 1
        for key, share in shares.items():
            linear[key] += share

    target = agreement.get("mqls_per_month")
    monthly = [
        {"month": m, "mqls": n, "target": target, "met": None if target is None else n >= target}
        for m, n in sorted(funnel.monthly_mqls.items())
    ]
    return {
        "events": run.stats.events,
        "from": None if run.stats.first_at is None else format_iso(run.stats.first_at),
        "to": None if run.stats.last_at is None else format_iso(run.stats.last_at),
        "prospects": len(first_seen),
        "funnel": {s: len(reached[s]) for s in ("mql", "sal", "sql", "customer", "recycled")},
        "lead_response_hours": _spread(response),
        "sla": {
            "accept_within_hours": None if within is None else within / US_PER_HOUR,
            "mql_episodes": episodes,
            "decided": decided,
            "breaches": breaches,
            "breach_rate": _ratio(breaches, decided),
        },
        "mql_to_sal_rate": rate("mql", "sal"),
        "mql_to_sql_rate": rates["mql_to_sql"],
        "velocity_days": _spread(velocity),
        "time_to_mql_days": _spread(to_mql),
        "rejections_by_reason": dict(funnel.rejections.most_common()),
        "rule_contribution": [
            {
                "rule": rule,
                "mqls": n,
                "share": _ratio(n, funnel.mqls),
                "points": funnel.mql_points[rule],
            }
            for rule, n in funnel.mql_rules.most_common()
        ],
        "sequences": sequences,
        "content_influence": {
            "deals": len(deals),
            "first_touch": dict(first_touch.most_common(15)),
            "last_touch": dict(last_touch.most_common(15)),
            "linear": dict(sorted(linear.items(), key=lambda kv: -kv[1])[:15]),
        },
        "marketing": {"mqls_per_month_target": target, "monthly": monthly},
        "forecast": forecast,
        "mqls": mqls,
        "alerts": funnel.alerts,
        "sends": funnel.sends,
        "weekly": _weekly(funnel.weekly),
        "outcome_scores": funnel.outcome_scores,
        "distributions": {"time_to_mql_days": [round(d, 2) for d in to_mql]},
        "accounts": account_figures(run.end_states, run.accounts, funnel.rules, end),
    }
