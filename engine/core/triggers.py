"""Triggers: on each event, N within D with used-up events, `unless` absence, cooldown.

Contract "Triggers". The times kept per prospect and trigger are the matching events that are
not used up; a firing uses up every one of them within the window.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort

from leadrules.engine.core import actions
from leadrules.engine.core.ruleset import Trigger
from leadrules.engine.core.state import Timer, TriggerState
from leadrules.engine.core.turn import Turn


def _in_cooldown(trigger: Trigger, ts: TriggerState, at: int) -> bool:
    return (
        trigger.cooldown_us is not None
        and ts.last_fired is not None
        and at < ts.last_fired + trigger.cooldown_us
    )


def cancel_absences(turn: Turn, matched: set[int]) -> None:
    """An event matching a trigger's `unless` in (t0, t0 + within] cancels that pending check."""
    at = turn.at
    for trigger_id, ts in turn.state.triggers.items():
        if not ts.absences:
            continue
        index = turn.compiled.trigger_unless.get(trigger_id)
        if index is None or index not in matched:
            continue
        within = turn.compiled.triggers_by_id[trigger_id].unless_within_us or 0
        for token, t0 in list(ts.absences.items()):
            if t0 < at <= t0 + within:
                del ts.absences[token]


def consider(turn: Turn, trigger: Trigger) -> None:
    """`trigger`'s `when` matched the current event: count it, and fire if due."""
    state, at = turn.state, turn.at
    ts = state.triggers.get(trigger.id)
    if ts is None:
        ts = state.triggers[trigger.id] = TriggerState()
    if trigger.times is not None and trigger.within_us is not None:
        unused = ts.unused
        start = at - trigger.within_us  # an event exactly D earlier is within
        lo = bisect_left(unused, start)
        if lo and (not unused or unused[-1] <= at):
            del unused[:lo]  # in time order, these can never count again
        insort(unused, at)
        if _in_cooldown(trigger, ts, at):
            return  # during the cooldown it fires nothing and uses nothing up
        lo = bisect_left(unused, start)
        hi = bisect_right(unused, at)
        if hi - lo < trigger.times:
            return
        del unused[lo:hi]
    elif _in_cooldown(trigger, ts, at):
        return
    if trigger.unless is not None and trigger.unless_within_us is not None:
        token = state.new_token()
        ts.absences[token] = at
        turn.schedule(
            Timer(
                at + trigger.unless_within_us, state.id, "absence", token, trigger.id, origin_at=at
            )
        )
        return
    fire(turn, trigger, ts)


def fire(turn: Turn, trigger: Trigger, ts: TriggerState) -> None:
    ts.last_fired = turn.at
    actions.run(turn, trigger.actions, trigger.id)


def on_absence_timer(turn: Turn, timer: Timer) -> None:
    """t0 + within has come and no `unless` event was seen: fire (unless cooling down)."""
    ts = turn.state.triggers.get(timer.name)
    trigger = turn.compiled.triggers_by_id.get(timer.name)
    if ts is None or trigger is None or ts.absences.pop(timer.token, None) is None:
        return
    if _in_cooldown(trigger, ts, turn.at):
        return
    fire(turn, trigger, ts)
