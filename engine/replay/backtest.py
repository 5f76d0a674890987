"""`leadrules backtest`: the same history under a baseline and a candidate rule set, and
how well each one's MQLs predicted what sales and deals later said.

One pass over the events (engine/replay/lanes.py) runs up to four lanes: each rule set as
it is (its decisions: MQLs, alerts, sends, sequences), and each rule set's scoring alone
with an MQL probe (engine/replay/thresholds.py), from which the best threshold follows
without replaying once per threshold. A candidate with the baseline's scoring shares its
probe lane.

Every prospect count is by canonical id after identity merges (`resolve` at the end).
Definitions of the outcome figures (docs/backtest.md): `mqls` distinct prospects that
reached `mql`; `positives` distinct prospects with a `Lead Qualified` or `Deal Won` event;
`true_positives` positives whose first `mql` came at or before their first such event
(exact event times, microseconds); `precision` tp/mqls and `recall` tp/positives, None
on a zero denominator; `rejected_by_reason` the `Lead Rejected` events at or after the
prospect's first `mql`, by `properties.reason` ("(none)" when missing).
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from leadrules.engine.core.events import Event
from leadrules.engine.core.lifecycle import FEEDBACK
from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.core.state import Decision, ProspectState
from leadrules.engine.core.turn import Options
from leadrules.engine.replay.lanes import Lane, PassStats, run_lanes
from leadrules.engine.replay.sources import EventFile, Rejected
from leadrules.engine.replay.thresholds import Checks
from leadrules.engine.timefmt import format_iso

POSITIVE = frozenset({"Lead Qualified", "Deal Won"})
NEVER = 1 << 62  # a threshold no score reaches: the probe run has no MQL
US_PER_DAY = 86_400_000_000
US_PER_WEEK = 7 * US_PER_DAY


def top_reasons(state: ProspectState, n: int = 5) -> list[dict[str, Any]]:
    """The rules behind a score, biggest contributions first."""
    ranked = sorted(state.points_by_rule().items(), key=lambda item: (-abs(item[1]), item[0]))
    return [{"rule": rule, "points": p} for rule, p in ranked[:n] if p]


@dataclass
class Side:
    """What one rule set decided over the history (raw prospect ids, resolved later)."""

    name: str
    rules: RuleSet
    lane: Lane | None = None
    first_mql: dict[str, int] = field(default_factory=dict)
    mql_detail: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_action: Counter[str] = field(default_factory=Counter)
    sequences: Counter[str] = field(default_factory=Counter)
    weekly: dict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    checks: Checks = field(default_factory=Checks)

    def collect(self, decisions: list[Decision], at: int) -> None:
        week = (at // US_PER_DAY + 3) // 7  # Monday-based weeks since the epoch
        for decision in decisions:
            record = decision.record
            action = record["action"]
            self.by_action[action] += 1
            if action == "set_stage":
                if record["stage"] != "mql":
                    continue
                self.weekly[week]["mql"] += 1
                prospect = record["prospect"]
                if prospect not in self.first_mql:
                    self.first_mql[prospect] = at
                    assert self.lane is not None
                    state = self.lane.world.get(prospect)
                    self.mql_detail[prospect] = {
                        "at": format_iso(at),
                        "score": record["score"],
                        "reasons": [] if state is None else top_reasons(state),
                    }
            elif action == "notify" or action == "send":
                self.weekly[week][action] += 1
            elif action == "start_sequence":
                self.sequences[record["sequence"]] += 1


@dataclass
class Outcomes:
    """What sales and deals said, from the history itself (raw ids)."""

    first_seen: dict[str, int] = field(default_factory=dict)
    first_positive: dict[str, int] = field(default_factory=dict)
    rejections: list[tuple[str, int, str]] = field(default_factory=list)

    def observe(self, event: Event) -> None:
        prospect = event.prospect
        if prospect not in self.first_seen:
            self.first_seen[prospect] = event.ts
        if event.type == "track":
            name = event.event
            if name in POSITIVE:
                if prospect not in self.first_positive:
                    self.first_positive[prospect] = event.ts
            elif name == "Lead Rejected":
                reason = event.properties.get("reason")
                self.rejections.append(
                    (prospect, event.ts, "(none)" if reason is None else str(reason))
                )


def probe_rules(rules: RuleSet) -> RuleSet:
    """The rule set as far as score and stage go: no triggers, sequences or lifecycle
    actions (they never change either), and a threshold no score reaches."""
    lifecycle = dataclasses.replace(
        rules.lifecycle,
        mql_threshold=NEVER,
        on_mql=(),
        sla_accept_within_us=None,
        on_breach=(),
        on_reject=(),
    )
    return dataclasses.replace(rules, triggers=(), sequences={}, lifecycle=lifecycle)


def scoring_events(rules: RuleSet) -> Callable[[Event], bool] | None:
    """Which events can change a score or a stage under `rules` (None: any may). The
    others — group, screen, track events no behaviour rule or sales feedback names, pages
    when no rule looks at pages — leave a probe run's scores and stages as they are, so the
    probe lane skips them."""
    names = set(FEEDBACK)
    pages = False
    for rule in rules.scoring:
        kind = rule.match.kind
        if kind == "track" and rule.match.event is not None:
            names.add(rule.match.event)
        elif kind == "page":
            pages = True
        elif kind is not None:
            return None
    wanted = frozenset(names)

    def accepts(event: Event) -> bool:
        kind = event.type
        if kind == "track":
            return event.event in wanted
        if kind == "page":
            return pages
        return kind == "identify" or kind == "alias"

    return accepts


def _same_scoring(a: RuleSet, b: RuleSet) -> bool:
    return (
        a.scoring == b.scoring
        and a.lifecycle.reset_score_on_reject == b.lifecycle.reset_score_on_reject
    )


@dataclass
class BacktestRun:
    baseline: Side
    candidate: Side
    outcomes: Outcomes
    stats: PassStats
    resolve: Callable[[str], str]


def lanes_for(baseline: RuleSet, candidate: RuleSet) -> tuple[list[Side], Outcomes, list[Lane]]:
    """The two sides, the outcomes they are judged by, and the lanes of one pass: each
    rule set as it is, and a probe of each scoring (one, when the candidate's is the
    baseline's: the candidate then shares the baseline's checks)."""
    sides = [Side("baseline", baseline), Side("candidate", candidate)]
    lanes = []
    for side in sides:
        side.lane = Lane(side.rules, side.collect)
        lanes.append(side.lane)
    base_checks = sides[0].checks
    probe = Options(mql_probe=base_checks.record)
    lanes.append(Lane(probe_rules(baseline), options=probe, accepts=scoring_events(baseline)))
    if _same_scoring(baseline, candidate):
        sides[1].checks = base_checks
    else:
        probe = Options(mql_probe=sides[1].checks.record)
        accepts = scoring_events(candidate)
        lanes.append(Lane(probe_rules(candidate), options=probe, accepts=accepts))
    return sides, Outcomes(), lanes


def run_backtest(
    sources: list[EventFile],
    baseline: RuleSet,
    candidate: RuleSet,
    *,
    on_reject: Callable[[Rejected], None] = lambda item: None,
    on_bytes: Callable[[int], None] | None = None,
) -> BacktestRun:
    """The backtest in this process (`backtest_workers.run_backtest_workers`: in partitions)."""
    sides: list[Side] = []
    outcomes = Outcomes()

    def make_lanes() -> list[Lane]:
        nonlocal sides, outcomes
        sides, outcomes, lanes = lanes_for(baseline, candidate)
        return lanes

    lanes, stats = run_lanes(
        sources, make_lanes, lambda event: outcomes.observe(event), on_reject, on_bytes
    )
    return BacktestRun(sides[0], sides[1], outcomes, stats, lanes[0].world.resolve)


def _earliest(times: dict[str, int], resolve: Callable[[str], str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for prospect, at in times.items():
        canonical = resolve(prospect)
        if canonical not in out or at < out[canonical]:
            out[canonical] = at
    return out


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


def _quantile(values: list[float], q: float) -> float | None:
    """Nearest-rank quantile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 1))
    return ordered[int(rank) - 1]


def outcome_figures(
    first_mql: dict[str, int], positives: dict[str, int], rejections: list[tuple[str, int, str]]
) -> dict[str, Any]:
    """The outcome keys of the contract, from canonical first-MQL and first-positive times
    and canonical rejections."""
    tp = sum(1 for p, at in positives.items() if p in first_mql and first_mql[p] <= at)
    rejected: Counter[str] = Counter(
        reason for p, at, reason in rejections if p in first_mql and at >= first_mql[p]
    )
    return {
        "mqls": len(first_mql),
        "positives": len(positives),
        "true_positives": tp,
        "precision": _ratio(tp, len(first_mql)),
        "recall": _ratio(tp, len(positives)),
        "rejected_by_reason": dict(sorted(rejected.items())),
    }
