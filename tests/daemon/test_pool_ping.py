"""PostgreSQL connections are pinged before use only after being idle (`daemon.pool_ping`):
back-to-back transactions cost no ping, and a connection the server dropped while it was
idle is replaced before a statement can fail on it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from leadrules.engine.daemon import pool_ping
from leadrules.engine.daemon.store import Store

# PostgreSQL only (conftest's database fixture, one backend): SQLite has no server to lose.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgres"], indirect=True),
]


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    yield store
    store.dispose()


def counted_pings(store: Store) -> list[float]:
    pings: list[float] = []
    original = store.engine.dialect.do_ping

    def do_ping(dbapi_connection: Any) -> bool:
        pings.append(time.monotonic())
        return bool(original(dbapi_connection))

    store.engine.dialect.do_ping = do_ping  # type: ignore[method-assign]
    return pings


def backend_pid(store: Store) -> int:
    with store.session() as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_back_to_back_transactions_are_not_pinged(store: Store) -> None:
    pings = counted_pings(store)
    first = backend_pid(store)
    for _ in range(20):
        assert backend_pid(store) == first  # the same pooled connection each time
    assert pings == []


def test_a_connection_dropped_while_idle_is_replaced_before_use(
    store: Store, database_url: str
) -> None:
    pings = counted_pings(store)
    first = backend_pid(store)
    admin = database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (first,))
    time.sleep(pool_ping.IDLE_S + 0.2)
    second = backend_pid(store)  # no error: the ping found the connection gone
    assert second != first
    assert len(pings) == 1
