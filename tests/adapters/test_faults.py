"""Delivery faults through the real dispatcher and a real HTTP receiver on 127.0.0.1: an
endpoint that is down, slow, answering 500, or 429 with `Retry-After`. Retries keep the key,
back off, honour `Retry-After`, end in a dead letter after the limit, and lose nothing."""

from __future__ import annotations

import time
from dataclasses import replace
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from leadrules.engine.clock import SimulatedClock
from leadrules.engine.core.ruleset import Channel
from leadrules.engine.daemon.dispatch import Dispatcher, outbox, retry_dead
from leadrules.engine.daemon.service import Service
from leadrules.engine.daemon.store import Store
from leadrules.engine.language.loader import load_rules
from leadrules.engine.language.templates import TemplateSet
from leadrules.engine.timefmt import US_PER_S, parse_timestamp
from tests.receivers import HttpReceiver, free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BASE_US, MAX_US = 2 * US_PER_S, 60 * US_PER_S


def seeded(store: Store, prospects: int = 3) -> tuple[SimulatedClock, Any, list[str]]:
    """Demo requests from a few prospects: decisions waiting in the outbox (their keys)."""
    clock = SimulatedClock(parse_timestamp("2026-03-04T10:10:00Z"))
    rules = load_rules(ROOT / "rules", ROOT / "config")[0]
    service = Service(store, rules, clock)
    for i in range(prospects):
        service.ingest(
            [
                {"type": "identify", "userId": f"u{i}", "traits": {"name": f"P{i}"},
                 "messageId": f"i{i}", "timestamp": "2026-03-04T10:00:00Z"},
                {"type": "track", "userId": f"u{i}", "event": "Demo Requested",
                 "messageId": f"d{i}", "timestamp": "2026-03-04T10:00:01Z"},
            ]
        )  # fmt: skip
    service.process_pending()
    keys = sorted(r.key for r in outbox(store, "pending", limit=1000))
    assert len(keys) >= prospects
    return clock, rules, keys


def dispatcher(
    store: Store, clock: SimulatedClock, rules: Any, url: str, **settings: Any
) -> Dispatcher:
    channels = {n: Channel(n, "webhook", {"url": url, **settings}) for n in rules.channels}
    return Dispatcher(
        store,
        replace(rules, channels=channels),
        TemplateSet(ROOT / "rules" / "templates"),
        clock,
        max_attempts=4,
        backoff_base_us=BASE_US,
        backoff_max_us=MAX_US,
    )


def received(http: HttpReceiver) -> list[str]:
    return sorted(r.headers["idempotency-key"] for r in http.requests)


def status_of(store: Store) -> dict[str, str]:
    return {r.key: r.status for r in outbox(store, limit=1000) if r.status != "skipped"}


def test_an_endpoint_that_is_down_is_retried_and_nothing_is_lost(
    store: Store, http: HttpReceiver
) -> None:
    clock, rules, keys = seeded(store)
    sender = dispatcher(store, clock, rules, f"http://127.0.0.1:{free_port()}/down")
    assert sender.drain() == len(keys)
    rows = outbox(store, "pending", limit=1000)
    assert len(rows) == len(keys) and all(r.attempts == 1 for r in rows)
    assert all("ConnectError" in (r.last_error or "") for r in rows)
    assert all(clock.now_us() <= r.next_attempt_at <= clock.now_us() + 2 * BASE_US for r in rows)
    assert sender.drain() == 0  # nothing is due before its backoff
    # The endpoint comes back (the channel now points at a listening receiver).
    sender.use_rules(dispatcher(store, clock, rules, http.url).rules, sender.templates)
    clock.advance_to(clock.now_us() + MAX_US)
    sender.drain()
    assert received(http) == keys
    assert set(status_of(store).values()) == {"sent"}


def test_a_slow_endpoint_times_out_and_the_retry_keeps_the_key(
    store: Store, http: HttpReceiver
) -> None:
    clock, rules, keys = seeded(store, prospects=1)
    http.delay = 1.5
    sender = dispatcher(store, clock, rules, http.url, timeout=0.3)
    sender.drain()
    rows = outbox(store, "pending", limit=1000)
    assert len(rows) == len(keys) and all("timed out" in (r.last_error or "") for r in rows)
    http.delay = 0
    clock.advance_to(clock.now_us() + MAX_US)
    sender.drain()
    assert set(status_of(store).values()) == {"sent"}
    deadline = time.monotonic() + 10  # the slow first attempts arrive late, under the same key
    while len(http.requests) < 2 * len(keys) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert received(http) == sorted(keys * 2)  # at least once: a deduping receiver acts once


def test_500_is_retried_with_growing_backoff_under_the_same_key(
    store: Store, http: HttpReceiver
) -> None:
    clock, rules, keys = seeded(store, prospects=1)
    http.default_status = 500
    sender = dispatcher(store, clock, rules, http.url)
    for attempt in (1, 2, 3):
        now = clock.now_us()
        sender.drain()
        for row in outbox(store, "pending", limit=1000):
            assert row.attempts == attempt and "HTTP 500" in (row.last_error or "")
            assert now <= row.next_attempt_at <= now + min(MAX_US, BASE_US * 2**attempt)
        clock.advance_to(clock.now_us() + MAX_US)
    http.default_status = 200
    sender.drain()
    assert received(http) == sorted(keys * 4)
    assert set(status_of(store).values()) == {"sent"}


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_429_with_retry_after_is_honoured(store: Store, http: HttpReceiver, form: str) -> None:
    clock, rules, keys = seeded(store, prospects=1)
    http.default_status = 429
    http.retry_after = "300" if form == "seconds" else formatdate(time.time() + 300, usegmt=True)
    sender = dispatcher(store, clock, rules, http.url)
    start = clock.now_us()
    sender.drain()
    rows = outbox(store, "pending", limit=1000)
    # 300 s asked for, far beyond the dispatcher's own backoff (at most 4 s on attempt 1).
    assert rows and all(r.next_attempt_at >= start + 295 * US_PER_S for r in rows)
    assert all("Retry-After" in (r.last_error or "") for r in rows)
    http.default_status = 200
    clock.advance_to(start + 290 * US_PER_S)
    assert sender.drain() == 0 and len(http.requests) == len(keys)  # not before it
    clock.advance_to(start + 301 * US_PER_S)
    assert sender.drain() == len(keys)
    assert set(status_of(store).values()) == {"sent"}


def test_dead_letter_after_the_limit_then_retry_delivers_everything(
    store: Store, http: HttpReceiver
) -> None:
    clock, rules, keys = seeded(store)
    http.default_status = 503
    sender = dispatcher(store, clock, rules, http.url)
    for _ in range(6):
        sender.drain()
        clock.advance_to(clock.now_us() + MAX_US)
    dead = outbox(store, "dead", limit=1000)
    assert sorted(r.key for r in dead) == keys
    assert all(r.attempts == 4 and "HTTP 503" in (r.last_error or "") for r in dead)
    assert len(http.requests) == 4 * len(keys)  # the limit, no more
    http.default_status, http.requests = 200, []
    assert retry_dead(store, clock.now_us()) == len(keys)
    sender.drain()
    assert received(http) == keys and set(status_of(store).values()) == {"sent"}


def test_a_final_error_dead_letters_at_once(store: Store, http: HttpReceiver) -> None:
    clock, rules, keys = seeded(store, prospects=1)
    http.default_status = 404
    dispatcher(store, clock, rules, http.url).drain()
    assert [(r.status, r.attempts) for r in outbox(store, "dead")] == [("dead", 1)] * len(keys)
