"""One unit of evaluation — an event or a timer, for one prospect — and what it decides.

`Compiled` is the rule set prepared for evaluation (matchers, predicates, indices); a `Turn`
carries the prospect's state, the time, and collects the decision records in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from leadrules.engine.core.matching import make_matcher
from leadrules.engine.core.predicates import Matcher, trait_predicate
from leadrules.engine.core.ruleset import Match, RuleSet, ScoringRule, Trigger
from leadrules.engine.core.send_windows import next_open, sla_due
from leadrules.engine.core.state import Decision, ProspectState, Timer
from leadrules.engine.timefmt import format_at, format_iso


class World(Protocol):
    """Where prospect state, identities, timers and seen message ids live."""

    def resolve(self, prospect: str) -> str:
        """The canonical id that `prospect` stands for (itself when never linked)."""
        ...

    def get(self, prospect: str) -> ProspectState | None: ...

    def create(self, prospect: str) -> ProspectState: ...

    def link(self, alias: str, canonical: str) -> None:
        """From now on `alias` resolves to `canonical`."""
        ...

    def drop(self, prospect: str) -> None:
        """Forget the state of a prospect that was merged into another."""
        ...

    def schedule(self, timer: Timer) -> None: ...

    def seen(self, message_id: str) -> bool:
        """True when `message_id` was seen before; otherwise remember it and return False."""
        ...


@dataclass
class Compiled:
    """A rule set prepared for evaluation: every event-bearing match in one matcher."""

    rules: RuleSet
    matcher: Matcher
    behaviour: list[tuple[int, ScoringRule]]  # (match index, rule)
    fit: list[tuple[ScoringRule, Callable[[dict[str, Any]], bool]]]
    trigger_when: list[tuple[int, Trigger]]
    trigger_unless: dict[str, int]  # trigger id -> match index of its `unless`
    exit_matches: dict[str, list[int]]  # sequence -> match indices of its exit entries
    stage_exits: dict[str, list[Callable[[Any], bool]]] = field(default_factory=dict)
    triggers_by_id: dict[str, Trigger] = field(default_factory=dict)
    n_behaviour: int = 0  # match indices [0, n_behaviour) are scoring rules

    @classmethod
    def build(cls, rules: RuleSet, matcher: str = "python") -> Compiled:
        from leadrules.engine.core.conditions import compile_ops

        matches: list[Match] = []

        def add(match: Match) -> int:
            matches.append(match)
            return len(matches) - 1

        behaviour = [(add(r.match), r) for r in rules.scoring if not r.is_fit]
        fit = [(r, trait_predicate(r.match)) for r in rules.scoring if r.is_fit]
        trigger_when = [(add(t.match), t) for t in rules.triggers]
        trigger_unless = {t.id: add(t.unless) for t in rules.triggers if t.unless is not None}
        exit_matches = {
            name: [add(m) for m in seq.exit_events] for name, seq in rules.sequences.items()
        }
        stage_exits = {
            name: [compile_ops(c.ops) for c in seq.exit_stages]
            for name, seq in rules.sequences.items()
        }
        return cls(
            rules=rules,
            matcher=make_matcher(matcher, matches),
            behaviour=behaviour,
            fit=fit,
            trigger_when=trigger_when,
            trigger_unless=trigger_unless,
            exit_matches=exit_matches,
            stage_exits=stage_exits,
            triggers_by_id={t.id: t for t in rules.triggers},
            n_behaviour=len(behaviour),
        )


@dataclass
class Options:
    capture_context: bool = False  # build template variables for each notify/send (daemon)
    keep_history: bool = False  # keep expired and cleared ledger entries (explain)
    # Called with (prospect, at, score before, score after) at every MQL check of a lead or
    # recycled prospect: the backtest finds from one run what any threshold would do.
    mql_probe: Callable[[str, int, int, int], None] | None = None


class Turn:
    """The evaluation of one event or timer for one prospect."""

    __slots__ = ("at", "compiled", "decisions", "options", "origin", "rules", "state", "world")

    def __init__(
        self,
        compiled: Compiled,
        world: World,
        options: Options,
        state: ProspectState,
        at: int,
        origin: str,
    ) -> None:
        self.compiled = compiled
        self.rules = compiled.rules
        self.world = world
        self.options = options
        self.state = state
        self.at = at
        self.origin = origin
        self.decisions: list[Decision] = []

    def schedule(self, timer: Timer) -> None:
        self.world.schedule(timer)

    def emit(
        self,
        action: str,
        rule: str,
        *,
        channel: str | None = None,
        template: str | None = None,
        sequence: str | None = None,
        step: int | None = None,
    ) -> None:
        """Record one decision, with the score and stage right after it."""
        state = self.state
        record: dict[str, Any] = {
            "at": format_at(self.at),
            "prospect": state.id,
            "action": action,
            "rule": rule,
        }
        if channel is not None:
            record["channel"] = channel
        if template is not None:
            record["template"] = template
        if sequence is not None:
            record["sequence"] = sequence
        if step is not None:
            record["step"] = step
        record["score"] = state.score(self.at)
        record["stage"] = state.stage
        if action == "send" and channel is not None:
            spec = self.rules.channels.get(channel)
            if spec is not None and spec.send_window is not None:
                due = next_open(spec.send_window, self.at, state.traits)
                if due != self.at:
                    record["deliver_at"] = format_at(due)  # quiet hours: it waits
        key = f"{self.origin}/{len(self.decisions)}"
        context = None
        if self.options.capture_context and action in ("notify", "send"):
            context = template_context(state, record, self.at, self.rules)
            context["event"] = _firing_event(state, self.origin)
        self.decisions.append(Decision(record, key, context))


def shown(described: dict[str, Any]) -> dict[str, Any]:
    """An event description for people and templates: `at` as ISO 8601 instead of `ts`."""
    out = {k: v for k, v in described.items() if k != "ts"}
    if "ts" in described:
        out["at"] = format_iso(described["ts"])
    return out


def _firing_event(state: ProspectState, origin: str) -> dict[str, Any] | None:
    """The track or page event this turn evaluates, as templates see it (None for timers
    and identify messages, which are not kept in `recent`)."""
    for described in reversed(state.recent):
        if described["messageId"] == origin:
            return shown(described)
    return None


def _reason_order(reason: dict[str, Any]) -> tuple[int, str]:
    """Biggest contributions first, then oldest."""
    points: int = reason["points"]
    return (-abs(points), str(reason["at"]))


def template_context(
    state: ProspectState, record: dict[str, Any], at: int, rules: RuleSet
) -> dict[str, Any]:
    """The variables a template is rendered with (contract, "Templates")."""
    reasons = [
        {
            "rule": f.rule,
            "points": f.points,
            "at": format_iso(f.since),
            "event": shown(f.event),
            "kind": "fit",
        }
        for f in state.fit.values()
    ]
    reasons += [
        {
            "rule": e.rule,
            "points": e.points,
            "at": format_iso(e.at),
            "event": shown(e.event),
            "kind": "behaviour",
            "expires_at": None if e.expires is None else format_iso(e.expires),
        }
        for e in state.active_entries()
    ]
    reasons.sort(key=_reason_order)
    sla_deadline = None
    within = rules.lifecycle.sla_accept_within_us
    if state.stage == "mql" and within is not None and state.history:
        due = sla_due(state.history[-1].at, within, rules.lifecycle.sla_business_hours)
        sla_deadline = format_iso(due)
    return {
        "prospect": state.id,
        "traits": dict(state.traits),
        "score": record["score"],
        "stage": record["stage"],
        "rule": record["rule"],
        "channel": record.get("channel"),
        "template": record.get("template"),
        "reasons": reasons,
        "recent": [shown(r) for r in reversed(state.recent)],
        "sequence": record.get("sequence"),
        "step": record.get("step"),
        "at": format_iso(at),
        "sla_deadline": sla_deadline,
        "reject_reason": state.reject_reason,
    }
