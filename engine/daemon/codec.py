"""ProspectState <-> plain JSON-able dicts, for the daemon's store.

Everything is kept, so a state loaded back evaluates exactly as the one that was saved; the
heap of expiring points is rebuilt from the ledger.
"""

from __future__ import annotations

import heapq
from typing import Any

from leadrules.engine.core.state import (
    Enrolment,
    FitEntry,
    LedgerEntry,
    ProspectState,
    StageChange,
    TriggerState,
)


def encode(state: ProspectState) -> dict[str, Any]:
    return {
        "id": state.id,
        "traits": state.traits,
        "trait_at": state.trait_at,
        "stage": state.stage,
        "history": [[h.at, h.stage, h.rule, h.reason] for h in state.history],
        "reject_reason": state.reject_reason,
        "unsubscribed": state.unsubscribed,
        "ledger": [
            [e.rule, e.points, e.at, e.expires, e.event, e.seq, e.state] for e in state.ledger
        ],
        "behaviour_points": state.behaviour_points,
        "fit": [[f.rule, f.points, f.since, f.event] for f in state.fit.values()],
        "fit_points": state.fit_points,
        "awards": state.awards,
        "triggers": {k: [t.unused, t.last_fired, t.absences] for k, t in state.triggers.items()},
        "enrolments": [
            [e.sequence, e.token, e.started, e.origin, e.next_step]
            for e in state.enrolments.values()
        ],
        "sla_token": state.sla_token,
        "expiry_check": state.expiry_check,
        "recent": state.recent,
        "aliases": state.aliases,
        "counter": state.counter,
        "last_at": state.last_at,
    }


def decode(data: dict[str, Any]) -> ProspectState:
    state = ProspectState(data["id"])
    state.traits = data["traits"]
    state.trait_at = data["trait_at"]
    state.stage = data["stage"]
    state.history = [StageChange(*h) for h in data["history"]]
    state.reject_reason = data["reject_reason"]
    state.unsubscribed = data["unsubscribed"]
    state.ledger = [LedgerEntry(*e) for e in data["ledger"]]
    state.behaviour_points = data["behaviour_points"]
    state.expiring = [
        (e.expires, e.seq, e) for e in state.ledger if e.state == "active" and e.expires is not None
    ]
    heapq.heapify(state.expiring)
    state.fit = {f[0]: FitEntry(*f) for f in data["fit"]}
    state.fit_points = data["fit_points"]
    state.awards = data["awards"]
    state.triggers = {k: TriggerState(t[0], t[1], t[2]) for k, t in data["triggers"].items()}
    state.enrolments = {e[0]: Enrolment(*e) for e in data["enrolments"]}
    state.sla_token = data["sla_token"]
    check = data.get("expiry_check")
    state.expiry_check = (check[0], check[1]) if check else None
    state.inactive = sum(1 for e in state.ledger if e.state != "active")
    state.negative_expiries = [
        e.expires
        for e in state.ledger
        if e.state == "active" and e.points < 0 and e.expires is not None
    ]
    heapq.heapify(state.negative_expiries)
    state.recent = data["recent"]
    state.aliases = data["aliases"]
    state.counter = data["counter"]
    state.last_at = data["last_at"]
    return state
