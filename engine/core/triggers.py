"""Triggers: on each event, N within D with used-up events, `unless` absence, cooldown.

Contract "Triggers". The times kept per prospect and trigger are the matching events that are
not used up; a firing uses up every one of them within the window.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable
from functools import cache
from typing import Any

from leadrules.engine.core import actions
from leadrules.engine.core.conditions import compile_fields
from leadrules.engine.core.ruleset import FieldCond, Trigger
from leadrules.engine.core.state import Timer, TriggerState
from leadrules.engine.core.turn import Turn


def _in_cooldown(trigger: Trigger, ts: TriggerState, at: int) -> bool:
    return (
        trigger.cooldown_us is not None
        and ts.last_fired is not None
        and at < ts.last_fired + trigger.cooldown_us
    )


def cancel_absences(turn: Turn, matched: set[int], ts: int) -> None:
    """An event (timestamp `ts`) matching a trigger's `unless` in (t0, t0 + within] cancels
    that pending check; a late one too, as long as the check has not fired yet."""
    for trigger_id, tstate in turn.state.triggers.items():
        if not tstate.absences:
            continue
        index = turn.compiled.trigger_unless.get(trigger_id)
        if index is None or index not in matched:
            continue
        within = turn.compiled.triggers_by_id[trigger_id].unless_within_us or 0
        for token, t0 in list(tstate.absences.items()):
            if t0 < ts <= t0 + within:
                del tstate.absences[token]


def _full_window(unused: list[int], ts: int, within: int, times: int) -> tuple[int, int] | None:
    """The first window `[x - within, x]` holding the event at `ts` and at least `times`
    unused events: `x` is `ts` itself, or, for a late event, a later unused event within
    `within` after it (the window the late event completes). As slice bounds, or None."""
    lo = bisect_left(unused, ts - within)
    hi = bisect_right(unused, ts)
    if hi - lo >= times:
        return lo, hi
    end = bisect_right(unused, ts + within)
    while hi < end:  # only a late event has later ones
        x = unused[hi]
        hi = bisect_right(unused, x)
        lo = bisect_left(unused, x - within, lo)
        if hi - lo >= times:
            return lo, hi
    return None


@cache
def _state_test(conds: tuple[FieldCond, ...]) -> Callable[[Any], bool] | None:
    return compile_fields(conds)


def consider(turn: Turn, trigger: Trigger, ts: int) -> None:
    """`trigger`'s `when` matched the current event (timestamp `ts`): count it, and fire if
    due. A firing happens at the turn's time, which is later than `ts` for a late event."""
    state, at = turn.state, turn.at
    if trigger.state:  # `when: {stage, score}`: an event that does not meet them is no match
        test = _state_test(trigger.state)
        if test is not None and not test({"stage": state.stage, "score": state.score(at)}):
            return
    tstate = state.triggers.get(trigger.id)
    if tstate is None:
        tstate = state.triggers[trigger.id] = TriggerState()
    if trigger.times is not None and trigger.within_us is not None:
        unused, within = tstate.unused, trigger.within_us
        if not unused or unused[-1] <= ts:
            # In time order. Events older than 2 x within can count neither for a later
            # event nor for a late one less than `within` late: forget them.
            old = bisect_left(unused, ts - 2 * within)
            if old:
                del unused[:old]
            unused.append(ts)
        else:
            insort(unused, ts)
        if _in_cooldown(trigger, tstate, at):
            return  # during the cooldown it fires nothing and uses nothing up
        window = _full_window(unused, ts, within, trigger.times)
        if window is None:
            return
        del unused[window[0] : window[1]]
    elif _in_cooldown(trigger, tstate, at):
        return
    if trigger.unless is not None and trigger.unless_within_us is not None:
        token = state.new_token()
        tstate.absences[token] = at
        turn.schedule(
            Timer(
                at + trigger.unless_within_us, state.id, "absence", token, trigger.id, origin_at=at
            )
        )
        return
    fire(turn, trigger, tstate)


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
