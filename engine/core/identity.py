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
    # Entry numbers are per prospect (the expiry heap orders ties by them, and the stored
    # state rebuilds the heap from them): src's entries take the next numbers of `into`, so
    # no two entries of the merged prospect share one.
    entries = {id(e): e for e in src.ledger} | {id(item[2]): item[2] for item in src.expiring}
    for entry in sorted(entries.values(), key=lambda e: (e.at, e.seq)):
        into.counter += 1
        entry.seq = into.counter
    into.ledger = sorted(into.ledger + src.ledger, key=lambda e: (e.at, e.seq))
    into.inactive += src.inactive
    for due in src.negative_expiries:
        heapq.heappush(into.negative_expiries, due)
    if src.expiry_check is not None and (
        into.expiry_check is None or src.expiry_check[0] < into.expiry_check[0]
    ):
        into.expiry_check = src.expiry_check  # it re-arms over the merged ledger when it runs
    into.behaviour_points += src.behaviour_points
    for due, _, entry in src.expiring:
        heapq.heappush(into.expiring, (due, entry.seq, entry))
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
