"""Identity: an `identify` or `alias` that links an anonymous id to a known one merges what the
anonymous id did into the known prospect (contract "Events (input)").

Decisions (docs/rules.md): the first link wins — an id already merged into one prospect is
not moved to another; traits merge with the later-set value winning; the further-along stage
wins; enrolments in the same sequence keep the known prospect's.
"""

from __future__ import annotations

import heapq

from leadrules.engine.core.state import RECENT_EVENTS, ProspectState, TriggerState

_RANK = {"lead": 0, "recycled": 1, "mql": 2, "sal": 3, "sql": 4, "customer": 5}


def merge(into: ProspectState, src: ProspectState) -> None:
    """Move everything `src` holds into `into` (the known prospect)."""
    for key, value in src.traits.items():
        src_at = src.trait_at.get(key, 0)
        if key not in into.traits or src_at > into.trait_at.get(key, 0):
            into.traits[key] = value
            into.trait_at[key] = src_at
    into.ledger = sorted(into.ledger + src.ledger, key=lambda e: (e.at, e.seq))
    into.inactive += src.inactive
    for due in src.negative_expiries:
        heapq.heappush(into.negative_expiries, due)
    if src.expiry_check is not None and (
        into.expiry_check is None or src.expiry_check[0] < into.expiry_check[0]
    ):
        into.expiry_check = src.expiry_check  # it re-arms over the merged ledger when it runs
    into.behaviour_points += src.behaviour_points
    # Heap items are (due, number, entry) and numbers are per prospect: renumber src's in
    # `into`'s sequence, so two equal (due, number) never make the heap compare entries.
    for due, _, entry in sorted(src.expiring, key=lambda item: (item[0], item[1])):
        into.counter += 1
        heapq.heappush(into.expiring, (due, into.counter, entry))
    for rule, times in src.awards.items():
        into.awards[rule] = sorted(into.awards.get(rule, []) + times)
    if into.account is None:
        into.account, into.account_traits = src.account, src.account_traits
    for channel, times in src.sends.items():
        into.sends[channel] = sorted(into.sends.get(channel, []) + times)
    for trigger_id, theirs in src.triggers.items():
        ours = into.triggers.setdefault(trigger_id, TriggerState())
        ours.unused = sorted(ours.unused + theirs.unused)
        if theirs.last_fired is not None and (
            ours.last_fired is None or theirs.last_fired > ours.last_fired
        ):
            ours.last_fired = theirs.last_fired
        ours.absences.update(theirs.absences)
    for name, enrolment in src.enrolments.items():
        into.enrolments.setdefault(name, enrolment)
    into.unsubscribed = into.unsubscribed or src.unsubscribed
    if _RANK[src.stage] > _RANK[into.stage]:
        into.stage = src.stage
        into.sla_token = src.sla_token
    into.history = sorted(into.history + src.history, key=lambda h: h.at)
    into.recent = sorted(into.recent + src.recent, key=lambda r: r["ts"])[-RECENT_EVENTS:]
    if into.reject_reason is None:
        into.reject_reason = src.reject_reason
    into.aliases.extend([src.id, *src.aliases])
    into.last_at = max(into.last_at, src.last_at)
