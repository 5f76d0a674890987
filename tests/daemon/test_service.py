"""The daemon's service and dispatcher on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from leadrules.adapters.memory import MemoryAdapter
from leadrules.engine.clock import SimulatedClock
from leadrules.engine.core.ruleset import Channel
from leadrules.engine.daemon.dispatch import Dispatcher, drop_dead, outbox, retry_dead
from leadrules.engine.daemon.service import Service
from leadrules.engine.daemon.store import DecisionRow, EventRow, Store
from leadrules.engine.language.loader import load_rules
from leadrules.engine.language.templates import TemplateSet
from leadrules.engine.replay.dry_run import replay
from leadrules.engine.replay.sources import EventFile
from leadrules.engine.timefmt import US_PER_S, parse_timestamp

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "events.jsonl"
UNTIL = parse_timestamp("2026-06-01T00:00:00Z")


def rules() -> Any:
    return load_rules(ROOT / "rules", ROOT / "config")[0]


def events() -> list[dict[str, Any]]:
    return [json.loads(line) for line in EXAMPLES.read_text().splitlines()]


def replayed() -> list[dict[str, Any]]:
    out = io.BytesIO()
    replay([EventFile(str(EXAMPLES))], rules(), out, until=UNTIL)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_ingest_keeps_the_valid_messages_of_a_batch_and_names_the_bad_ones(store: Store) -> None:
    service = Service(store, rules(), SimulatedClock(1))
    result = service.ingest(
        [
            {"type": "track", "userId": "u1", "event": "Demo Requested", "messageId": "a"},
            {"type": "track", "userId": "u1"},
            {"type": "page", "anonymousId": "x", "timestamp": "not a time"},
            {"type": "page", "userId": "u2", "messageId": "a"},
        ],
        received_at=5 * US_PER_S,
    )
    assert (result.accepted, result.duplicates) == (1, 1)
    assert result.errors == [
        {"index": 1, "field": "event", "message": "is required for track"},
        {"index": 2, "field": "timestamp", "message": "is not an ISO 8601 time: 'not a time'"},
    ]
    with store.session() as session:
        (row,) = session.exec(select(EventRow)).all()
    stored = json.loads(row.raw)
    assert stored["timestamp"] == "1970-01-01T00:00:05Z"  # filled in: the time of receipt
    assert row.ts == 5 * US_PER_S


def test_live_evaluation_makes_exactly_the_decisions_of_a_replay(store: Store) -> None:
    service = Service(store, rules(), SimulatedClock(0))
    for event in events():
        assert service.ingest([event]).errors == []
        service.process_pending()
    service.tick(UNTIL)
    assert service.decisions() == replayed()


def test_exported_log_replays_to_the_same_decisions(store: Store, tmp_path: Path) -> None:
    service = Service(store, rules(), SimulatedClock(0))
    service.ingest(events())
    service.process_pending()
    service.tick(UNTIL)
    exported = tmp_path / "log.jsonl"
    with exported.open("wb") as out:
        assert service.export(out) == len(events()) - 1  # the duplicate was stored once
    again = io.BytesIO()
    replay([EventFile(str(exported))], rules(), again, until=UNTIL)
    assert [json.loads(x) for x in again.getvalue().splitlines()] == service.decisions()


def test_overdue_timers_fire_after_downtime_at_their_due_time(store: Store) -> None:
    clock = SimulatedClock(parse_timestamp("2026-03-09T13:00:00Z"))
    service = Service(store, rules(), clock)
    cara = [
        e for e in events() if e.get("userId") == "u-cara" and e.get("event") != "Lead Rejected"
    ]
    service.ingest(cara)
    service.process_pending()
    assert [r["rule"] for r in service.decisions()][-1] == "demo-request"
    clock.advance_to(parse_timestamp("2026-03-12T00:00:00Z"))  # the daemon was down for days
    assert service.tick() == 1
    breach = service.decisions()[-1]
    assert (breach["rule"], breach["at"]) == ("lifecycle.sla", "2026-03-09T17:03:00Z")


def test_a_crash_during_evaluation_loses_nothing_and_writes_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = Service(store, rules(), SimulatedClock(0))
    first = events()[:8]
    unique = len({e["messageId"] for e in first})
    service.ingest(first)
    import leadrules.engine.daemon.batch as module

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(module, "write_outcome", boom)
    with pytest.raises(RuntimeError):
        service.process_pending()
    assert service.decisions() == []
    assert service.counts()["pending_events"] == unique
    monkeypatch.undo()
    assert service.process_pending() == unique
    keys = [r.key for r in outbox(store, limit=1000)]
    assert len(keys) == len(set(keys)) > 0


def dispatcher(
    store: Store, clock: SimulatedClock, fail_times: int, max_attempts: int = 3
) -> Dispatcher:
    base = rules()
    channels = {name: Channel(name, "memory", {"fail_times": fail_times}) for name in base.channels}
    from dataclasses import replace

    return Dispatcher(
        store,
        replace(base, channels=channels),
        TemplateSet(ROOT / "rules" / "templates"),
        clock,
        max_attempts=max_attempts,
        backoff_base_us=US_PER_S,
        backoff_max_us=60 * US_PER_S,
    )


def live(store: Store, clock: SimulatedClock) -> Service:
    service = Service(store, rules(), clock)
    service.ingest(
        [e for e in events() if e.get("userId") == "u-cara" or e.get("anonymousId") == "u-cara"][:3]
    )
    service.process_pending()
    return service


def test_dispatcher_retries_with_backoff_and_keeps_the_idempotency_key(store: Store) -> None:
    MemoryAdapter.clear()
    clock = SimulatedClock(parse_timestamp("2026-03-09T13:03:00Z"))
    live(store, clock)
    sender = dispatcher(store, clock, fail_times=1)
    assert sender.drain() == 3  # three notifications; the first attempt on each channel fails
    failed = [r for r in outbox(store, "pending") if r.attempts == 1]
    assert failed and all(r.next_attempt_at >= clock.now_us() for r in failed)
    clock.advance_to(clock.now_us() + 120 * US_PER_S)
    sender.drain()
    sent = MemoryAdapter.sent("sales") + MemoryAdapter.sent("crm")
    assert sorted(m.key for m in sent) == sorted(r.key for r in outbox(store, "sent"))
    assert {m.subject for m in MemoryAdapter.sent("sales")} == {
        "New MQL: Cara Diaz (100 points)",
        "Demo requested: Cara Diaz",
    }
    assert outbox(store, "pending") == []


def test_dead_letters_after_max_attempts_can_be_retried_or_dropped(store: Store) -> None:
    MemoryAdapter.clear()
    clock = SimulatedClock(parse_timestamp("2026-03-09T13:03:00Z"))
    live(store, clock)
    sender = dispatcher(store, clock, fail_times=100, max_attempts=2)
    for _ in range(3):
        sender.drain()
        clock.advance_to(clock.now_us() + 600 * US_PER_S)
    dead = outbox(store, "dead")
    assert len(dead) == 3 and all(
        r.attempts == 2 and "failing on purpose" in (r.last_error or "") for r in dead
    )
    assert retry_dead(store, clock.now_us(), dead[0].key) == 1
    assert drop_dead(store) == 2
    with store.session() as session:
        rows = session.exec(select(DecisionRow).where(col(DecisionRow.channel).is_not(None)))
        statuses = sorted(r.status for r in rows)
    assert statuses == ["dropped", "dropped", "pending"]


def test_decisions_without_a_message_are_recorded_but_not_delivered(store: Store) -> None:
    service = Service(store, rules(), SimulatedClock(0))
    service.ingest(events())
    service.process_pending()
    skipped = outbox(store, "skipped", limit=1000)
    assert {r.action for r in skipped} == {"set_stage", "start_sequence", "stop_sequence"}
