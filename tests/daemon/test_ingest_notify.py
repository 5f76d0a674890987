"""Several workers on one PostgreSQL wake each other: a worker that stores events sends
`NOTIFY leadrules_ingest` as they commit, and every worker listens on its lease connection,
so an event is evaluated at once by whichever worker holds its partition (daemon.leases)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest

from leadrules.engine.daemon.event_log import store_events
from leadrules.engine.daemon.leases import INGEST_CHANNEL, Leases, libpq_url
from leadrules.engine.daemon.store import Store
from tests.conftest import migrated

pytestmark = [pytest.mark.postgres]

AT = 1_780_000_000_000_000


@pytest.fixture
def store(postgres_database_url: str) -> Iterator[Store]:
    yield from migrated(postgres_database_url)


def page(message_id: str) -> dict[str, object]:
    return {
        "type": "page",
        "userId": "u",
        "messageId": message_id,
        "timestamp": "2026-06-01T09:00:00Z",
    }


def notifications(conn: psycopg.Connection, seconds: float = 2.0) -> int:
    return sum(1 for _ in conn.notifies(timeout=seconds))


def test_storing_new_events_notifies_the_channel_once_on_commit(store: Store) -> None:
    with psycopg.connect(libpq_url(store.url), autocommit=True) as listener:
        listener.execute(f"LISTEN {INGEST_CHANNEL}")
        result = store_events(
            store,
            [page("a"), page("b"), {"type": "page"}],
            AT,
            refuse_future=False,
            notify=INGEST_CHANNEL,
        )
        assert (result.accepted, len(result.errors)) == (2, 1)
        assert notifications(listener) == 1
        # nothing new (duplicates only, or nothing valid): no one to wake
        store_events(store, [page("a")], AT, refuse_future=False, notify=INGEST_CHANNEL)
        store_events(store, [{"type": "page"}], AT, refuse_future=False, notify=INGEST_CHANNEL)
        # a daemon alone does not notify
        store_events(store, [page("c")], AT, refuse_future=False)
        assert notifications(listener, 1.0) == 0


def test_a_worker_is_woken_by_another_workers_ingest(store: Store) -> None:
    woken = threading.Event()
    leases = Leases(store.url, lambda: AT, interval=30.0, on_ingest=woken.set)
    leases.start()
    try:
        assert not woken.wait(0.5)  # nothing stored yet (and the next round is 30 s away)
        store_events(store, [page("x")], AT, refuse_future=False, notify=INGEST_CHANNEL)
        assert woken.wait(10.0)  # well before the round: the notification woke it
    finally:
        leases.stop()
