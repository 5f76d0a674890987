"""The daemon on the real clock (`WallClock`), with wall time frozen and moved by freezegun:
the clock reads UTC microseconds whatever the local zone, a failed delivery waits out its
backoff in wall time, and a timer fires when wall time reaches its due time, not before.
The other daemon tests drive a `SimulatedClock`; these check the clock the daemon runs on."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from leadrules.adapters.memory import MemoryAdapter
from leadrules.engine.clock import WallClock
from leadrules.engine.core.ruleset import Channel
from leadrules.engine.daemon.dispatch import Dispatcher, outbox
from leadrules.engine.daemon.service import Service
from leadrules.engine.daemon.store import Store
from leadrules.engine.language.loader import load_rules
from leadrules.engine.language.templates import TemplateSet
from leadrules.engine.timefmt import US_PER_S, format_iso, parse_timestamp

ROOT = Path(__file__).resolve().parents[2]
EVENTS = [
    json.loads(line) for line in (ROOT / "examples" / "events.jsonl").read_text().splitlines()
]
LAST = max(parse_timestamp(e["timestamp"]) for e in EVENTS)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    store = Store(f"sqlite:///{tmp_path}/leadrules.db")
    store.migrate()
    yield store
    store.dispose()


def rules() -> Any:
    return load_rules(ROOT / "rules", ROOT / "config")[0]


@pytest.mark.parametrize("offset", [-8, 0, 5])
def test_the_wall_clock_reads_utc_microseconds_in_any_local_zone(offset: int) -> None:
    with freeze_time("2026-03-09T13:03:00Z", tz_offset=offset) as frozen:
        clock = WallClock()
        assert clock.now_us() == parse_timestamp("2026-03-09T13:03:00Z")
        frozen.tick(timedelta(seconds=1, microseconds=500_001))
        assert clock.now_us() == parse_timestamp("2026-03-09T13:03:01.500001Z")


def test_a_failed_delivery_waits_out_its_backoff_in_wall_time(store: Store) -> None:
    MemoryAdapter.clear()
    start = LAST + 60 * US_PER_S
    with freeze_time(format_iso(start)) as frozen:
        clock = WallClock()
        service = Service(store, rules(), clock)
        service.ingest(EVENTS)
        service.process_pending()
        base = rules()
        channels = {n: Channel(n, "memory", {"fail_times": 1}) for n in base.channels}
        sender = Dispatcher(
            store,
            replace(base, channels=channels),
            TemplateSet(ROOT / "rules" / "templates"),
            clock,
            backoff_base_us=10 * US_PER_S,
            backoff_max_us=60 * US_PER_S,
            rng=random.Random(3),
        )
        first = sender.drain()
        retrying = [r for r in outbox(store, "pending") if r.attempts == 1]
        assert first > 0 and retrying
        # each waits a backoff drawn from [0, 20 s] (base 10 s, doubled once), from now
        assert all(start <= r.next_attempt_at <= start + 20 * US_PER_S for r in retrying)
        waiting = [r for r in retrying if r.next_attempt_at > start]
        assert waiting  # the seeded draws are not all zero
        sender.drain()  # at the same wall time: the waiting ones are left alone
        pending = {r.key: r for r in outbox(store, "pending")}
        assert all(pending[r.key].attempts == 1 for r in waiting)

        latest = max(r.next_attempt_at for r in waiting)
        frozen.move_to(format_iso(latest))
        sender.drain()
        sent = {r.key: r for r in outbox(store, "sent", limit=1000)}
        assert all(sent[r.key].attempts == 2 for r in retrying)
        # sent at the wall time the dispatcher read, in microseconds
        assert {sent[r.key].sent_at for r in waiting} == {latest}


def test_a_timer_fires_when_wall_time_reaches_it(store: Store) -> None:
    start = LAST + 60 * US_PER_S
    with freeze_time(format_iso(start)) as frozen:
        service = Service(store, rules(), WallClock())
        service.ingest(EVENTS)
        service.tick()  # evaluates what was received; fires what was already overdue
        waiting = sorted(service.pending_timers(), key=lambda t: t.due)
        assert waiting and all(t.due > start for t in waiting)
        before = len(service.decisions())
        assert service.tick() == 0  # nothing is due yet

        first = waiting[0]
        frozen.move_to(format_iso(first.due - 1))
        assert service.tick() == 0  # a microsecond early
        frozen.move_to(format_iso(first.due))
        assert service.tick() >= 1
        left = {(t.kind, t.token, t.due) for t in service.pending_timers()}
        assert (first.kind, first.token, first.due) not in left
        made = service.decisions()[before:]
        assert made and {d["at"] for d in made} == {format_iso(first.due)}
