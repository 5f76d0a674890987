"""The funnel over a history: what one replay's decisions and the events' outcomes say about
the agreement between marketing and sales (`leadrules report`, docs/backtest.md).

Collected in one pass (engine/replay/lanes.py, one lane): each prospect's stage changes at
their exact times, the rules behind each MQL, sequence enrolments and exits (and the event
that caused an exit), sales' rejections with reasons, first and deal times, and the content
(pages, videos, guides) each prospect consumed, for attribution. Prospects are counted by
canonical id after identity merges; figures are computed in engine/replay/funnel_figures.py.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from leadrules.engine.core.account_state import AccountState
from leadrules.engine.core.events import Event
from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.core.state import Decision, ProspectState
from leadrules.engine.replay.lanes import Lane, PassStats, run_lanes
from leadrules.engine.replay.sources import EventFile, Rejected

STAGES = ("mql", "sal", "sql", "customer", "recycled")


def content_key(event: Event) -> str | None:
    """What a touch was about, for attribution: a page's path, a video's or guide's title."""
    props = event.properties
    if event.type == "page":
        path = props.get("path")
        return None if path is None else f"page {path}"
    name = event.event
    if name == "Video Watched":
        return f"video {props.get('title') or props.get('category') or '?'}"
    if name == "Guide Downloaded":
        return f"guide {props.get('title') or props.get('guide') or '?'}"
    if name == "Webinar Attended":
        return f"webinar {props.get('title') or props.get('name') or '?'}"
    return None


@dataclass
class Funnel:
    """Everything `report` needs, keyed by raw prospect id (resolved at the end)."""

    rules: RuleSet
    lane: Lane | None = None
    stages: dict[str, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))
    mql_rules: Counter[str] = field(default_factory=Counter)  # MQLs each rule contributed to
    mql_points: Counter[str] = field(default_factory=Counter)  # points given towards MQLs
    mqls: int = 0
    enrolled: dict[str, list[tuple[str, int]]] = field(default_factory=lambda: defaultdict(list))
    exits: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    first_seen: dict[str, int] = field(default_factory=dict)
    deals: dict[str, int] = field(default_factory=dict)
    rejections: Counter[str] = field(default_factory=Counter)
    touches: dict[str, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))
    sends: int = 0
    alerts: int = 0
    monthly_mqls: Counter[str] = field(default_factory=Counter)
    weekly: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    outcome_scores: dict[str, list[int]] = field(default_factory=lambda: {"won": [], "lost": []})
    current: Event | None = None

    def observe(self, event: Event) -> None:
        self.current = event
        prospect, ts = event.prospect, event.ts
        if prospect not in self.first_seen:
            self.first_seen[prospect] = ts
        if event.type == "track":
            if event.event in ("Deal Won", "Deal Lost") and self.lane is not None:
                world = self.lane.world
                state = world.get(world.resolve(prospect))
                outcome = "won" if event.event == "Deal Won" else "lost"
                self.outcome_scores[outcome].append(0 if state is None else state.score(ts))
            if event.event == "Deal Won" and prospect not in self.deals:
                self.deals[prospect] = ts
            elif event.event == "Lead Rejected":
                reason = event.properties.get("reason")
                self.rejections["(none)" if reason is None else str(reason)] += 1
        key = content_key(event)
        if key is not None:
            touches = self.touches[prospect]
            if not touches or touches[-1][1] != key:
                touches.append((ts, key))

    def collect(self, decisions: list[Decision], at: int) -> None:
        from leadrules.engine.timefmt import format_iso

        day = format_iso(at)[:10]
        for decision in decisions:
            record = decision.record
            action = record["action"]
            prospect = record["prospect"]
            if action == "set_stage":
                stage = record["stage"]
                self.stages[prospect].append((at, stage))
                if stage == "mql":
                    self.mqls += 1
                    self.monthly_mqls[day[:7]] += 1
                    self.weekly[day]["mql"] += 1
                    assert self.lane is not None
                    self._credit(self.lane.world.get(prospect))
            elif action == "start_sequence":
                self.enrolled[record["sequence"]].append((prospect, at))
            elif action == "stop_sequence":
                cause = "stage or rule"
                event = self.current
                if event is not None and decision.key.startswith(event.message_id + "/"):
                    cause = event.event or event.type
                self.exits[record["sequence"]][cause] += 1
            elif action == "send":
                self.sends += 1
                self.weekly[day]["send"] += 1
            elif action == "notify":
                self.alerts += 1
                self.weekly[day]["notify"] += 1

    def _credit(self, state: ProspectState | None) -> None:
        if state is None:
            return
        for rule, p in state.points_by_rule().items():
            if p > 0:
                self.mql_rules[rule] += 1
                self.mql_points[rule] += p


@dataclass
class FunnelRun:
    funnel: Funnel
    stats: PassStats
    resolve: Callable[[str], str]
    end_states: dict[str, ProspectState]
    accounts: dict[str, AccountState] = field(default_factory=dict)  # with account rules


def run_funnel(
    sources: list[EventFile],
    rules: RuleSet,
    *,
    on_reject: Callable[[Rejected], None] = lambda item: None,
) -> FunnelRun:
    holder: list[Funnel] = []

    def make_lanes() -> list[Lane]:
        holder.clear()
        funnel = Funnel(rules)
        holder.append(funnel)
        funnel.lane = Lane(rules, funnel.collect)
        return [funnel.lane]

    lanes, stats = run_lanes(sources, make_lanes, lambda e: holder[0].observe(e), on_reject)
    world = lanes[0].world
    return FunnelRun(holder[0], stats, world.resolve, world.states, world.accounts)
