"""The stored state document: any state survives encode -> JSON -> decode, the document is
versioned with named fields, the old positional document is still read, and a document this
version cannot read is refused with a message that says why."""

from __future__ import annotations

import heapq
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.generate import generate
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
from leadrules.engine.core.turn import Options
from leadrules.engine.daemon.codec import (
    DERIVED,
    VERSION,
    StateDocumentError,
    decode,
    decode_timer,
    encode,
    encode_timer,
)
from leadrules.engine.language.loader import load_rules
from leadrules.engine.replay.dry_run import replay
from leadrules.engine.replay.sources import EventFile

ROOT = Path(__file__).resolve().parents[2]
I64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
TIME = st.integers(min_value=0, max_value=2**62)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
JSON = st.recursive(
    st.none() | st.booleans() | I64 | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
OBJECT = st.dictionaries(TEXT, JSON, max_size=4)


@st.composite
def ledgers(draw: st.DrawFn) -> list[LedgerEntry]:
    seqs = draw(st.lists(st.integers(0, 10_000), unique=True, max_size=8))
    return [
        LedgerEntry(
            draw(TEXT),
            draw(st.integers(-100, 100)),
            draw(TIME),
            draw(st.none() | TIME),
            draw(OBJECT),
            seq,
            draw(st.sampled_from(LEDGER_STATES)),
        )
        for seq in seqs
    ]


def with_derived(state: ProspectState) -> ProspectState:
    """The heaps and count the engine keeps beside the ledger, built the engine's way (one
    push per award, in award order)."""
    for entry in sorted(state.ledger, key=lambda e: e.seq):
        if entry.state == "active" and entry.expires is not None:
            heapq.heappush(state.expiring, (entry.expires, entry.seq, entry))
            if entry.points < 0:
                heapq.heappush(state.negative_expiries, entry.expires)
    state.inactive = sum(1 for e in state.ledger if e.state != "active")
    return state


fits = st.builds(FitEntry, TEXT, st.integers(-100, 100), TIME, OBJECT)
states = st.builds(
    ProspectState,
    id=TEXT.filter(bool),
    traits=OBJECT,
    trait_at=st.dictionaries(TEXT, TIME, max_size=3),
    stage=st.sampled_from(STAGES),
    history=st.lists(
        st.builds(StageChange, TIME, st.sampled_from(STAGES), TEXT, st.none() | TEXT), max_size=4
    ),
    reject_reason=st.none() | TEXT,
    unsubscribed=st.booleans(),
    ledger=ledgers(),
    behaviour_points=I64,
    fit=st.lists(fits, max_size=3).map(lambda fs: {f.rule: f for f in fs}),
    fit_points=I64,
    awards=st.dictionaries(TEXT, st.lists(TIME, max_size=3), max_size=3),
    triggers=st.dictionaries(
        TEXT,
        st.builds(
            TriggerState,
            st.lists(TIME, max_size=3),
            st.none() | TIME,
            st.dictionaries(TEXT, TIME, max_size=2),
        ),
        max_size=3,
    ),
    enrolments=st.lists(
        st.builds(Enrolment, TEXT, TEXT, TIME, TEXT, st.integers(0, 20)), max_size=3
    ).map(lambda es: {e.sequence: e for e in es}),
    sla_token=st.none() | TEXT,
    expiry_check=st.none() | st.tuples(TIME, TEXT),
    recent=st.lists(OBJECT, max_size=3),
    aliases=st.lists(TEXT, max_size=3),
    counter=st.integers(0, 2**40),
    last_at=TIME,
).map(with_derived)


def stored(state: ProspectState) -> ProspectState:
    """What the daemon does: encode, JSON bytes in the database, decode."""
    return decode(orjson.loads(orjson.dumps(encode(state))))


def comparable(state: ProspectState) -> ProspectState:
    """Heaps hold the same items in an order that depends on how they were built."""
    return replace(
        state, expiring=sorted(state.expiring), negative_expiries=sorted(state.negative_expiries)
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(states)
def test_any_state_survives_the_store(state: ProspectState) -> None:
    back = stored(state)
    assert comparable(back) == comparable(state)
    assert _is_heap(back.expiring)
    assert _is_heap(back.negative_expiries)
    # the expiring heap points at the decoded ledger's own entries, not copies
    ledger_ids = {id(e) for e in back.ledger}
    assert all(id(entry) in ledger_ids for _, _, entry in back.expiring)


def _is_heap(items: list[Any]) -> bool:
    return all(items[(i - 1) // 2] <= items[i] for i in range(1, len(items)))


def test_the_document_has_a_version_and_names_every_field() -> None:
    state = ProspectState("p")
    state.ledger.append(LedgerEntry("pricing", 10, 5, 99, {"name": "x"}, 1))
    state.history.append(StageChange(5, "mql", "lifecycle.mql"))
    state.expiry_check = (99, "p#1")
    doc = encode(state)
    assert doc["version"] == VERSION == 2
    assert doc["ledger"] == [
        {"rule": "pricing", "points": 10, "at": 5, "expires": 99, "event": {"name": "x"},
         "seq": 1, "state": "active"}
    ]  # fmt: skip
    assert doc["history"] == [{"at": 5, "stage": "mql", "rule": "lifecycle.mql", "reason": None}]
    assert doc["expiry_check"] == {"due": 99, "token": "p#1"}


def test_every_field_of_the_state_is_stored_or_derived() -> None:
    """A field added to ProspectState without a place in the document would be lost at the
    first save: this fails until the codec is told about it."""
    names = {f.name for f in fields(ProspectState)}
    stored_names = set(encode(ProspectState("p"))) - {"version"}
    assert names - DERIVED == stored_names
    assert names >= DERIVED


def _v1(state: ProspectState) -> dict[str, Any]:
    """The document as written before it had a version: lists by position."""
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


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(states)
def test_a_version_1_document_is_read_and_written_back_as_version_2(state: ProspectState) -> None:
    back = decode(orjson.loads(orjson.dumps(_v1(state))))
    assert comparable(back) == comparable(state)
    assert encode(back)["version"] == 2


@pytest.mark.parametrize("version", [3, 0, "2", None, True])
def test_a_version_it_cannot_read_is_refused_clearly(version: object) -> None:
    doc = encode(ProspectState("p-9"))
    doc["version"] = version
    with pytest.raises(StateDocumentError) as caught:
        decode(doc)
    assert str(caught.value).startswith(
        f"prospect 'p-9': state document version {version!r} is not one this leadrules reads"
    )


def test_a_malformed_document_names_what_is_wrong() -> None:
    doc = encode(ProspectState("p-1"))
    del doc["sla_token"]
    with pytest.raises(StateDocumentError, match=r"prospect 'p-1': malformed .*'sla_token'"):
        decode(doc)
    doc = encode(ProspectState("p-2"))
    doc["stage"] = "won"
    with pytest.raises(StateDocumentError, match=r"prospect 'p-2': stage 'won' is not one of"):
        decode(doc)
    doc = encode(ProspectState("p-3"))
    doc["ledger"] = [{**encode_entry(), "state": "gone"}]
    with pytest.raises(StateDocumentError, match=r"ledger\[0\]\.state 'gone' is not one of"):
        decode(doc)


def encode_entry() -> dict[str, Any]:
    state = ProspectState("x")
    state.ledger.append(LedgerEntry("r", 1, 0, None, {}, 1))
    entry: dict[str, Any] = encode(state)["ledger"][0]
    return entry


def test_states_the_engine_made_survive_the_store(tmp_path: Path) -> None:
    """Real states: a generated stream (bench/generate.py) replayed under the example rules."""
    rules, _ = load_rules(ROOT / "rules", ROOT / "config")
    events = tmp_path / "events.jsonl"
    events.write_bytes(
        b"".join(orjson.dumps(m) + b"\n" for m in generate(6000, 11, prospects=150, days=90))
    )
    with open(tmp_path / "decisions.jsonl", "wb") as out:
        result = replay([EventFile(str(events))], rules, out, options=Options(keep_history=True))
    states = list(result.world.states.values())
    assert len(states) > 100
    kinds = {e.state for s in states for e in s.ledger} | {s.stage for s in states}
    assert {"active", "expired", "mql"} <= kinds, kinds
    for state in states:
        back = stored(state)
        for name in {f.name for f in fields(ProspectState)} - DERIVED:
            assert getattr(back, name) == getattr(state, name), name
        assert sorted(back.expiring) == sorted(state.expiring)
        assert encode(back) == encode(state)


timers = st.builds(
    Timer, TIME, TEXT, st.sampled_from(TIMER_KINDS), TEXT, TEXT, st.integers(0, 50), TIME
)


@settings(max_examples=100, deadline=None)
@given(timers)
def test_any_timer_survives_its_row(timer: Timer) -> None:
    payload = orjson.loads(orjson.dumps(encode_timer(timer)))
    assert set(payload) == {"kind", "token", "name", "index", "origin_at"}
    assert decode_timer(timer.due, timer.prospect, payload) == timer
    # the positional payload written before named fields is still read
    old = [timer.kind, timer.token, timer.name, timer.index, timer.origin_at]
    assert decode_timer(timer.due, timer.prospect, old) == timer


def test_a_timer_of_an_unknown_kind_is_refused() -> None:
    payload = encode_timer(Timer(5, "p-4", "sla", "p-4#1"))
    with pytest.raises(StateDocumentError, match=r"prospect 'p-4': timer kind 'nudge' is not"):
        decode_timer(5, "p-4", {**payload, "kind": "nudge"})
    with pytest.raises(StateDocumentError, match=r"prospect 'p-4': malformed timer payload"):
        decode_timer(5, "p-4", ["sla", "p-4#1"])
