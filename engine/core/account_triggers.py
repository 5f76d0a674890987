"""Account triggers (`scope: account`): a trigger counted over every prospect of an account.

The same rules as a prospect's trigger (contract "Triggers"), with the account in place of
the prospect: without `times` it fires on each matching event of any member; with `times: N,
within: D` it fires when N matching events of the account's members that are not used up
lie within the last D (the event included), and uses them up; with `distinct: prospects`
those N events must come from N different prospects. `cooldown` is per account. The
actions are notifications to sales naming the account (core.accounts.emit).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort

from leadrules.engine.core.account_state import AccountTriggerState
from leadrules.engine.core.accounts import account_of, account_time, emit
from leadrules.engine.core.ruleset import Trigger
from leadrules.engine.core.turn import Turn

Entry = tuple[int, str]


def _time(entry: Entry) -> int:
    return entry[0]


def _count(unused: list[Entry], lo: int, hi: int, distinct: bool) -> int:
    if not distinct:
        return hi - lo
    return len({prospect for _, prospect in unused[lo:hi]})


def _full_window(
    unused: list[Entry], ts: int, within: int, times: int, distinct: bool
) -> tuple[int, int] | None:
    """The first window `[x - within, x]` holding the event at `ts` that counts `times`:
    `x` is `ts`, or for a late event a later unused event at most `within` after it (as
    core.triggers does for a prospect). As slice bounds, or None."""
    lo = bisect_left(unused, ts - within, key=_time)
    hi = bisect_right(unused, ts, key=_time)
    if _count(unused, lo, hi, distinct) >= times:
        return lo, hi
    end = bisect_right(unused, ts + within, key=_time)
    while hi < end:
        x = unused[hi][0]
        hi = bisect_right(unused, x, key=_time)
        lo = bisect_left(unused, x - within, lo, key=_time)
        if _count(unused, lo, hi, distinct) >= times:
            return lo, hi
    return None


def _in_cooldown(trigger: Trigger, tstate: AccountTriggerState, at: int) -> bool:
    return (
        trigger.cooldown_us is not None
        and tstate.last_fired is not None
        and at < tstate.last_fired + trigger.cooldown_us
    )


def consider(turn: Turn, trigger: Trigger, ts: int) -> None:
    """The account trigger's `when` matched the current event (timestamp `ts`) of a member:
    count it for the account, and fire if due. A prospect without an account counts for
    nothing."""
    account = account_of(turn)
    if account is None:
        return
    at = account_time(turn, account)
    tstate = account.triggers.get(trigger.id)
    if tstate is None:
        tstate = account.triggers[trigger.id] = AccountTriggerState()
    if trigger.times is not None and trigger.within_us is not None:
        unused, within = tstate.unused, trigger.within_us
        entry = (ts, turn.state.id)
        if not unused or unused[-1][0] <= ts:
            # Events older than 2 x within count neither now nor for a late event.
            old = bisect_left(unused, ts - 2 * within, key=_time)
            if old:
                del unused[:old]
        insort(unused, entry)
        if _in_cooldown(trigger, tstate, at):
            return  # during the cooldown it fires nothing and uses nothing up
        window = _full_window(unused, ts, within, trigger.times, trigger.distinct)
        if window is None:
            return
        del unused[window[0] : window[1]]
    elif _in_cooldown(trigger, tstate, at):
        return
    tstate.last_fired = at
    for action in trigger.actions:
        emit(turn, account, trigger.id, action.channel, action.template, at)
