"""ProspectState <-> the JSON document the daemon stores per prospect (`prospect.state`),
and a Timer <-> the payload of its row (`timer.payload`).

The document is versioned (`"version": 2`) and every value sits under its field's name, so a
stored state stays readable when `ProspectState` grows. Everything is kept, so a state loaded
back evaluates exactly as the one that was saved; what can be derived is not stored: the heaps
of expiring points and of negative expiries, and the count of inactive ledger entries, are
rebuilt from the ledger.

Version 1 is the document written before the version field existed (lists by position); it
is still read, and is written back as version 2 the next time the prospect changes. Any other
version (a database written by a newer leadrules) is refused with `StateDocumentError`,
never guessed at.
"""

from __future__ import annotations

import heapq
from typing import Any

from leadrules.engine.core.ruleset import STAGES
from leadrules.engine.core.state import (
    LEDGER_STATES,
    TIMER_KINDS,
    Enrolment,
    FitEntry,
    LedgerEntry,
    ProspectState,
    StageChange,
    Timer,
    TriggerState,
)
from leadrules.engine.errors import LeadrulesError

VERSION = 2
READABLE = (1, 2)
# Fields of ProspectState that are rebuilt on decode rather than stored.
DERIVED = frozenset({"expiring", "negative_expiries", "inactive"})


class StateDocumentError(LeadrulesError):
    """A stored state document this version cannot read: a newer version, or a malformed one."""


def encode(state: ProspectState) -> dict[str, Any]:
    return {
        "version": VERSION,
        "id": state.id,
        "traits": state.traits,
        "trait_at": state.trait_at,
        "stage": state.stage,
        "history": [
            {"at": h.at, "stage": h.stage, "rule": h.rule, "reason": h.reason}
            for h in state.history
        ],
        "reject_reason": state.reject_reason,
        "unsubscribed": state.unsubscribed,
        "ledger": [
            {
                "rule": e.rule,
                "points": e.points,
                "at": e.at,
                "expires": e.expires,
                "event": e.event,
                "seq": e.seq,
                "state": e.state,
            }
            for e in state.ledger
        ],
        "behaviour_points": state.behaviour_points,
        "fit": {
            key: {"rule": f.rule, "points": f.points, "since": f.since, "event": f.event}
            for key, f in state.fit.items()
        },
        "fit_points": state.fit_points,
        "awards": state.awards,
        "triggers": {
            key: {"unused": t.unused, "last_fired": t.last_fired, "absences": t.absences}
            for key, t in state.triggers.items()
        },
        "enrolments": {
            key: {
                "sequence": e.sequence,
                "token": e.token,
                "started": e.started,
                "origin": e.origin,
                "next_step": e.next_step,
            }
            for key, e in state.enrolments.items()
        },
        "sla_token": state.sla_token,
        "expiry_check": None
        if state.expiry_check is None
        else {"due": state.expiry_check[0], "token": state.expiry_check[1]},
        "recent": state.recent,
        "aliases": state.aliases,
        "counter": state.counter,
        "last_at": state.last_at,
        "sends": state.sends,
        "account": state.account,
        "account_traits": state.account_traits,
    }


def decode(data: dict[str, Any]) -> ProspectState:
    """A stored document -> the state; `StateDocumentError` names what is wrong."""
    version = data.get("version", 1) if isinstance(data, dict) else None
    who = data.get("id", "?") if isinstance(data, dict) else "?"
    if version not in READABLE or isinstance(version, bool):
        raise StateDocumentError(
            f"prospect {who!r}: state document version {version!r} is not one this leadrules "
            f"reads (versions {READABLE[0]} to {READABLE[-1]}); it was written by another "
            "version of leadrules: run that version, or upgrade this one"
        )
    try:
        state = _from_v2(data) if version == 2 else _from_v1(data)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise StateDocumentError(
            f"prospect {who!r}: malformed state document (version {version}): {detail}"
        ) from exc
    _check(state)
    _rebuild_derived(state)
    return state


def _from_v2(data: dict[str, Any]) -> ProspectState:
    check = data["expiry_check"]
    return ProspectState(
        id=data["id"],
        traits=data["traits"],
        trait_at=data["trait_at"],
        stage=data["stage"],
        history=[StageChange(h["at"], h["stage"], h["rule"], h["reason"]) for h in data["history"]],
        reject_reason=data["reject_reason"],
        unsubscribed=data["unsubscribed"],
        ledger=[
            LedgerEntry(
                e["rule"], e["points"], e["at"], e["expires"], e["event"], e["seq"], e["state"]
            )
            for e in data["ledger"]
        ],
        behaviour_points=data["behaviour_points"],
        fit={
            key: FitEntry(f["rule"], f["points"], f["since"], f["event"])
            for key, f in data["fit"].items()
        },
        fit_points=data["fit_points"],
        awards=data["awards"],
        triggers={
            key: TriggerState(t["unused"], t["last_fired"], t["absences"])
            for key, t in data["triggers"].items()
        },
        enrolments={
            key: Enrolment(e["sequence"], e["token"], e["started"], e["origin"], e["next_step"])
            for key, e in data["enrolments"].items()
        },
        sla_token=data["sla_token"],
        expiry_check=None if check is None else (check["due"], check["token"]),
        recent=data["recent"],
        aliases=data["aliases"],
        counter=data["counter"],
        last_at=data["last_at"],
        sends=data.get("sends", {}),  # optional: documents written before send caps
        account=data.get("account"),  # optional: documents written before accounts
        account_traits=data.get("account_traits", {}),
    )


def _from_v1(data: dict[str, Any]) -> ProspectState:
    """The unversioned document: history, ledger, fit, triggers and enrolments as
    positional lists."""
    check = data.get("expiry_check")
    return ProspectState(
        id=data["id"],
        traits=data["traits"],
        trait_at=data["trait_at"],
        stage=data["stage"],
        history=[StageChange(*h) for h in data["history"]],
        reject_reason=data["reject_reason"],
        unsubscribed=data["unsubscribed"],
        ledger=[LedgerEntry(*e) for e in data["ledger"]],
        behaviour_points=data["behaviour_points"],
        fit={f[0]: FitEntry(*f) for f in data["fit"]},
        fit_points=data["fit_points"],
        awards=data["awards"],
        triggers={k: TriggerState(t[0], t[1], t[2]) for k, t in data["triggers"].items()},
        enrolments={e[0]: Enrolment(*e) for e in data["enrolments"]},
        sla_token=data["sla_token"],
        expiry_check=(check[0], check[1]) if check else None,
        recent=data["recent"],
        aliases=data["aliases"],
        counter=data["counter"],
        last_at=data["last_at"],
    )


def _check(state: ProspectState) -> None:
    """The typed values a document may hold: an unknown stage or ledger state would match no
    branch of the evaluator, so it is refused here, at the door."""
    if state.stage not in STAGES:
        raise StateDocumentError(
            f"prospect {state.id!r}: stage {state.stage!r} is not one of {', '.join(STAGES)}"
        )
    for i, change in enumerate(state.history):
        if change.stage not in STAGES:
            raise StateDocumentError(
                f"prospect {state.id!r}: history[{i}].stage {change.stage!r} is not one of "
                f"{', '.join(STAGES)}"
            )
    for i, entry in enumerate(state.ledger):
        if entry.state not in LEDGER_STATES:
            raise StateDocumentError(
                f"prospect {state.id!r}: ledger[{i}].state {entry.state!r} is not one of "
                f"{', '.join(LEDGER_STATES)}"
            )


def _rebuild_derived(state: ProspectState) -> None:
    active = [e for e in state.ledger if e.state == "active"]
    state.expiring = [(e.expires, e.seq, e) for e in active if e.expires is not None]
    heapq.heapify(state.expiring)
    state.negative_expiries = [e.expires for e in active if e.points < 0 and e.expires is not None]
    heapq.heapify(state.negative_expiries)
    state.inactive = len(state.ledger) - len(active)


def encode_timer(timer: Timer) -> dict[str, Any]:
    """A timer's payload; its due time and prospect are columns of the row."""
    return {
        "kind": timer.kind,
        "token": timer.token,
        "name": timer.name,
        "index": timer.index,
        "origin_at": timer.origin_at,
    }


def decode_timer(due: int, prospect: str, payload: dict[str, Any] | list[Any]) -> Timer:
    """A stored payload -> the timer. The positional list written before payloads had named
    fields is still read."""
    try:
        if isinstance(payload, list):
            kind, token, name, index, origin_at = payload
        else:
            kind, token, name = payload["kind"], payload["token"], payload["name"]
            index, origin_at = payload["index"], payload["origin_at"]
    except (KeyError, TypeError, ValueError) as exc:
        raise StateDocumentError(
            f"prospect {prospect!r}: malformed timer payload {payload!r}"
        ) from exc
    if kind not in TIMER_KINDS:
        raise StateDocumentError(
            f"prospect {prospect!r}: timer kind {kind!r} is not one of {', '.join(TIMER_KINDS)}"
        )
    return Timer(due, prospect, kind, token, name, index, origin_at)
