"""The lifecycle: lead -> mql -> sal -> sql -> customer, and recycled (contract "Lifecycle")."""

from __future__ import annotations

from leadrules.engine.core import actions, scoring, sequences
from leadrules.engine.core.events import Event
from leadrules.engine.core.ruleset import Stage
from leadrules.engine.core.send_windows import sla_due
from leadrules.engine.core.state import StageChange, Timer
from leadrules.engine.core.turn import Turn

# Sales feedback events and the stages each one may move a prospect from.
_BEFORE_CUSTOMER: frozenset[Stage] = frozenset({"lead", "mql", "sal", "sql", "recycled"})
FEEDBACK: dict[str, tuple[Stage, frozenset[Stage]]] = {
    "Lead Accepted": ("sal", frozenset({"mql"})),
    "Lead Qualified": ("sql", frozenset({"lead", "mql", "sal", "recycled"})),
    "Deal Won": ("customer", _BEFORE_CUSTOMER),
    "Lead Rejected": ("recycled", frozenset({"lead", "mql", "sal", "sql"})),
}
FEEDBACK_EVENTS = frozenset({*FEEDBACK, "Deal Lost"})  # Deal Lost: lifecycle.deal_lost_stage


def set_stage(turn: Turn, stage: Stage, reason: str | None = None) -> None:
    """Move to `stage`: a `set_stage` record, then the sequences that exit on it end."""
    state = turn.state
    leaving_mql = state.stage == "mql"
    state.stage = stage
    state.history.append(StageChange(turn.at, stage, f"lifecycle.{stage}", reason))
    if leaving_mql:
        state.sla_token = None  # accepted, rejected or moved on: the SLA no longer applies
    turn.emit("set_stage", f"lifecycle.{stage}")
    for channel in turn.rules.channels.values():  # channels subscribed to stage changes
        template = channel.stage_template
        if template is not None and (not channel.stage_filter or stage in channel.stage_filter):
            turn.emit("notify", f"lifecycle.{stage}", channel=channel.name, template=template)
    sequences.exit_on_stage(turn)


def check_mql(turn: Turn, before: int) -> None:
    """A lead or recycled prospect whose score reaches the threshold from below becomes mql."""
    lifecycle = turn.rules.lifecycle
    threshold = lifecycle.mql_threshold
    state = turn.state
    if threshold is None or state.stage not in ("lead", "recycled"):
        return
    probe = turn.options.mql_probe
    if probe is not None:
        probe(state.id, turn.at, before, state.score(turn.at))
    if not (before < threshold <= state.score(turn.at)):
        return
    set_stage(turn, "mql")
    within = lifecycle.sla_accept_within_us
    if within is not None:
        state.sla_token = state.new_token()
        due = sla_due(turn.at, within, lifecycle.sla_business_hours)
        turn.schedule(Timer(due, state.id, "sla", state.sla_token))
    actions.run(turn, lifecycle.on_mql, "lifecycle.mql")


def on_feedback(turn: Turn, event: Event) -> None:
    """Sales feedback (`Lead Accepted`, `Lead Rejected`, ...) moves the stage."""
    name = event.event or ""
    if name == "Deal Lost":
        _deal_lost(turn)
        return
    if name not in FEEDBACK:
        return
    target, sources = FEEDBACK[name]
    state = turn.state
    if name == "Lead Rejected":
        reason = event.properties.get("reason")
        if state.stage == "customer":
            return
        if reason is None:
            reason = turn.rules.lifecycle.default_reject_reason
        state.reject_reason = None if reason is None else str(reason)
        if state.stage not in sources:
            return  # already recycled: the reason is kept, nothing else happens
        set_stage(turn, "recycled", state.reject_reason)
        lifecycle = turn.rules.lifecycle
        if lifecycle.reset_score_on_reject:
            scoring.clear_behaviour(state, turn.options.keep_history)
        actions.run(turn, lifecycle.on_reject, "lifecycle.recycled")
        return
    if state.stage in sources:
        set_stage(turn, target)


def _deal_lost(turn: Turn) -> None:
    """`lifecycle.deal_lost_stage`: a lost deal (mql, sal or sql) goes back to that stage,
    from where it can become an mql again; without the setting nothing moves (contract)."""
    target = turn.rules.lifecycle.deal_lost_stage
    if target is not None and turn.state.stage in ("mql", "sal", "sql"):
        set_stage(turn, target, "deal lost")


def on_sla_timer(turn: Turn, timer: Timer) -> None:
    """`sla.accept_within` passed and the prospect is still an unanswered mql."""
    state = turn.state
    if state.stage != "mql" or state.sla_token != timer.token:
        return
    state.sla_token = None  # on_breach runs once
    actions.run(turn, turn.rules.lifecycle.on_breach, "lifecycle.sla")
