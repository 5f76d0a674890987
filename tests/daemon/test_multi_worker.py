"""Several `leadrules run` workers on one PostgreSQL (docs/scale.md, "Several workers"): two
and three real daemons take a generated stream over HTTP in parallel, each worker receiving
its share; the decisions per prospect equal one worker's on the same stream; a real local
receiver gets every decision exactly once; a worker killed with SIGKILL mid-stream has its
partitions taken over within seconds, and nothing is lost."""

from __future__ import annotations

import os
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from leadrules.engine.daemon.dispatch import RECORD_EVERY
from leadrules.engine.daemon.partitions import PARTITIONS
from tests.daemon.cluster import (
    balanced,
    decisions_by_prospect,
    partition_locks,
    post_all,
    settle,
    snapshot_rules,
    stored,
    streams,
    to_deliver,
    workers_on,
)
from tests.receivers import HttpReceiver

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

PEOPLE = 36  # about 400 messages


@pytest.fixture
def new_database() -> Iterator[Callable[[], str]]:
    """Empty databases on the PostgreSQL of LEADRULES_TEST_POSTGRES_URL, dropped after."""
    base = os.environ.get("LEADRULES_TEST_POSTGRES_URL")
    if base is None:
        if os.environ.get("CI"):
            pytest.fail("LEADRULES_TEST_POSTGRES_URL is not set in CI: .ci/run must start it")
        pytest.skip("several workers need PostgreSQL: set LEADRULES_TEST_POSTGRES_URL")
    admin = base.rsplit("/", 1)[0] + "/postgres"
    made: list[str] = []

    def make() -> str:
        name = f"lr_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return base.rsplit("/", 1)[0] + "/" + name

    yield make
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def one_worker(tmp_path: Path, url: str, hook: str, requests: list, rules: Path) -> dict[str, list]:
    """The reference: the same requests, by the same clients, to one worker."""
    with workers_on(tmp_path / "one", url, hook, 1, rules) as workers:
        post_all(workers, requests)
        settle(workers)
    return decisions_by_prospect(url)


def delivered_once(http: HttpReceiver, url: str) -> Counter[str]:
    keys = Counter(r.headers["idempotency-key"] for r in http.requests)
    assert set(keys) == to_deliver(url)  # every decision to deliver, and nothing else
    return keys


@pytest.mark.parametrize("count", [2, 3])
def test_workers_share_the_stream_and_decide_as_one_worker(
    tmp_path: Path, http: HttpReceiver, new_database: Callable[[], str], count: int
) -> None:
    requests = streams(PEOPLE, count, seed=count)
    rules = snapshot_rules(tmp_path / "rules")
    reference = one_worker(tmp_path, new_database(), http.url, requests, rules)
    http.requests.clear()

    url = new_database()
    with workers_on(tmp_path / "many", url, http.url, count, rules) as workers:
        took = balanced(workers)
        shares = [len(w.health()["partitions"]) for w in workers]
        assert sorted(shares) == sorted(
            PARTITIONS // count + (1 if n < PARTITIONS % count else 0) for n in range(count)
        )
        posted = post_all(workers, requests)
        settle(workers)
        assert {w.health()["workers"] for w in workers} == {count}
    print(f"\n{count} workers: partitions {shares}, balanced {took:.2f} s after the last start")

    ids, pending = stored(url)
    assert posted.failed_over == 0 and posted.acked == ids and pending == 0
    live = decisions_by_prospect(url)
    assert sum(len(r) for r in reference.values()) > PEOPLE  # the stream decides things
    assert live == reference
    keys = delivered_once(http, url)
    assert max(keys.values()) == 1, [k for k, n in keys.items() if n > 1]


def test_a_worker_killed_mid_stream_is_taken_over_and_nothing_is_lost(
    tmp_path: Path, http: HttpReceiver, new_database: Callable[[], str]
) -> None:
    requests = streams(PEOPLE, 3, seed=11)
    rules = snapshot_rules(tmp_path / "rules")
    reference = one_worker(tmp_path, new_database(), http.url, requests, rules)
    http.requests.clear()

    url = new_database()
    with workers_on(tmp_path / "many", url, http.url, 3, rules) as workers:
        balanced(workers)
        victim = workers[2]
        victim_parts = victim.health()["partitions"]
        survivors = workers[:2]
        midway = threading.Event()
        takeover: list[float] = []

        def kill_midway() -> None:
            midway.wait(timeout=60)
            victim.kill()  # SIGKILL: no goodbye, its connections just drop
            takeover.append(balanced(survivors))  # while the clients go on posting

        killer = threading.Thread(target=kill_midway)
        killer.start()
        posted = post_all(workers, requests, at_request=(len(requests[0]) // 3, midway))
        killer.join()
        since_kill = takeover[0]
        settle(survivors)
        assert all(w.health()["workers"] == 2 for w in survivors)
        taken = [p for w in survivors for p in w.health()["partitions"] if p in victim_parts]
    print(
        f"\nSIGKILL of a worker holding {len(victim_parts)} partitions: all {PARTITIONS} held "
        f"by the two others {since_kill:.2f} s after the kill; {posted.failed_over} requests "
        "sent again to another worker"
    )
    assert sorted(taken) == sorted(victim_parts)
    assert since_kill < 10
    assert partition_locks(url) == 0  # every worker gone, every lease with it

    ids, pending = stored(url)
    assert posted.acked <= ids and pending == 0  # every acknowledged event stored, evaluated
    assert len(posted.acked) == sum(len(b) for c in requests for b in c)
    assert decisions_by_prospect(url) == reference  # nothing lost, nothing decided twice
    keys = delivered_once(http, url)
    again = {k: n for k, n in keys.items() if n > 1}
    print(f"keys delivered more than once (in flight at the kill, same key): {len(again)}")
    assert len(again) <= RECORD_EVERY  # at most the group the killed worker was sending
