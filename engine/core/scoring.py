"""Scoring: behaviour points with limits and expiry, fit points, and the ledger of reasons.

Contract "Scoring": a behaviour rule awards its points once per matching event within its
`limit`; a fit rule counts while the traits satisfy it; the score at T is fit points plus
behaviour points awarded at or before T and not yet expired (an entry counts while T < E + D).
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right, insort
from typing import Any

from leadrules.engine.core.events import Event
from leadrules.engine.core.ruleset import ScoringRule
from leadrules.engine.core.state import FitEntry, LedgerEntry, ProspectState, Timer
from leadrules.engine.core.turn import Turn

# Event properties kept in descriptions (ledger reasons, `recent`, the `event` variable),
# each string cut to MAX_PROPERTY_CHARS so a prospect's state stays small.
USEFUL_PROPERTIES = ("title", "path", "url", "category", "name")
MAX_PROPERTY_CHARS = 200
# Expired and cleared ledger entries a prospect may hold before `compact` (explain from a
# replay's or the daemon's state lists them; `explain FILE` keeps them all).
COMPACT_AFTER = 4


def describe_event(event: Event) -> dict[str, Any]:
    """A short, JSON-friendly description of an event, kept with the points it earned and in
    the prospect's recent activity. `ts` is microseconds; `shown` turns it into ISO text."""
    out: dict[str, Any] = {"type": event.type, "messageId": event.message_id, "ts": event.ts}
    if event.event is not None:
        out["event"] = event.event
    if event.type == "page" and event.name is not None:
        out["name"] = event.name
    properties = event.properties
    if properties:  # what sales needs to read an alert: which page, video or guide
        for key in USEFUL_PROPERTIES:
            value = properties.get(key)
            if value is None or key in out:
                continue
            if isinstance(value, str):
                if len(value) > MAX_PROPERTY_CHARS:
                    value = value[: MAX_PROPERTY_CHARS - 1] + "…"
            elif not isinstance(value, int | float):
                continue  # nested values are not kept: the description stays small
            out[key] = value
    return out


def _within_limit(state: ProspectState, rule: ScoringRule, at: int) -> bool:
    """Record an award for an event at `at` if the rule's limit allows it (contract:
    `limit`): no rolling window of `per` that holds `at` may then hold more than `times`.
    In timestamp order that is the window ending at `at`; a late event also lies in the
    windows ending at the later awards within `per` after it."""
    limit = rule.limit
    if limit is None:
        return True
    awards = state.awards.setdefault(rule.id, [])
    if limit.per_us is None:
        if len(awards) >= limit.times:
            return False
        awards.append(at)
        return True
    # Awards exactly `per` before still count, as events exactly D earlier are "within".
    per, times = limit.per_us, limit.times
    lo = bisect_left(awards, at - per)
    hi = bisect_right(awards, at)
    if hi - lo >= times:
        return False
    if hi == len(awards):
        # In time order. Awards older than 2 x per can count neither for a later event nor
        # for a late one less than `per` late: forget them.
        old = bisect_left(awards, at - 2 * per, 0, lo)
        if old:
            del awards[:old]
        awards.append(at)
        return True
    for later in awards[hi : bisect_right(awards, at + per)]:
        if bisect_right(awards, later) - bisect_left(awards, later - per) >= times:
            return False
    insort(awards, at)
    return True


def award(turn: Turn, rule: ScoringRule, event: Event, described: dict[str, Any]) -> None:
    """Give `rule`'s points for `event`, if its limit allows. The points date from the
    event's timestamp (so do their limit and expiry), also for a late event."""
    state, at = turn.state, event.ts
    if not _within_limit(state, rule, at):
        return
    expires = None if rule.expires_after_us is None else at + rule.expires_after_us
    state.counter += 1
    entry = LedgerEntry(rule.id, rule.points, at, expires, described, state.counter)
    state.ledger.append(entry)
    state.behaviour_points += rule.points
    if expires is not None:
        heapq.heappush(state.expiring, (expires, state.counter, entry))
        if rule.points < 0 and _thresholds(turn):
            heapq.heappush(state.negative_expiries, expires)
            schedule_expiry_check(turn, expires)


def _thresholds(turn: Turn) -> bool:
    """Whether a rising score can make an MQL: a prospect's, or its account's."""
    rules = turn.rules
    if rules.lifecycle.mql_threshold is not None:
        return True
    return rules.accounts is not None and rules.accounts.mql_threshold is not None


def schedule_expiry_check(turn: Turn, due: int) -> None:
    """Negative points expiring raise the score, which may reach the MQL threshold then.
    One check is pending per prospect: the earliest; it schedules the next when it runs."""
    state = turn.state
    if state.expiry_check is not None and state.expiry_check[0] <= due:
        return
    token = state.new_token()
    state.expiry_check = (due, token)
    turn.schedule(Timer(due, state.id, "expiry", token))


def next_negative_expiry(state: ProspectState, after: int) -> int | None:
    """The earliest expiry after `after` of negative points."""
    heap = state.negative_expiries
    while heap and heap[0] <= after:
        heapq.heappop(heap)
    return heap[0] if heap else None


def refresh_fit(turn: Turn, event: Event | None) -> None:
    """Re-evaluate fit rules against the current traits."""
    state = turn.state
    for rule, holds in turn.compiled.fit:
        now_holds = holds(state.traits)
        had = rule.id in state.fit
        if now_holds and not had:
            described = describe_event(event) if event is not None else {}
            state.fit[rule.id] = FitEntry(rule.id, rule.points, turn.at, described)
            state.fit_points += rule.points
        elif had and not now_holds:
            del state.fit[rule.id]
            state.fit_points -= rule.points


def clear_behaviour(state: ProspectState, keep_history: bool) -> None:
    """`on_reject: reset_score`: behaviour points are cleared; fit points stay."""
    for entry in state.ledger:
        if entry.state == "active":
            entry.state = "cleared"
            state.inactive += 1
    state.behaviour_points = 0
    state.expiring.clear()
    state.negative_expiries.clear()
    if not keep_history:
        state.ledger.clear()
        state.inactive = 0


def compact(state: ProspectState) -> None:
    """Forget expired and cleared entries once there are more than `COMPACT_AFTER` of them
    and they outnumber the rest (a replay needs only the points that still count): a
    prospect holds a few of them, or fewer than live ones, so its ledger follows its live
    points, not the length of its history. Amortised: each entry is copied a bounded number
    of times."""
    if state.inactive > COMPACT_AFTER and state.inactive * 2 > len(state.ledger):
        state.ledger = [e for e in state.ledger if e.state == "active"]
        state.inactive = 0
