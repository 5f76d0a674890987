"""Several real `leadrules run` workers on one PostgreSQL database, a generated stream of
people posted to them in parallel, and what the database holds afterwards (the multi-worker
tests and `bench.live_workers`)."""

from __future__ import annotations

import json
import random
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from leadrules.engine.daemon.leases import PARTITION_LOCKS
from leadrules.engine.daemon.partitions import PARTITIONS
from tests.daemon.harness import ROOT, Daemon

Message = dict[str, Any]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def person(k: int, rng: random.Random, start: datetime) -> list[Message]:
    """One person's messages in the order they send them: anonymous page views, an
    `identify` that merges the anonymous id into the user id (ids that mostly fall in two
    partitions), activity as the user; some come back on a second device (a second
    anonymous id, merged later) or are aliased. Timestamps are a few seconds apart, so no
    timer of the example rules falls due while a test runs."""
    anon, user, other = f"anon-{k}", f"user-{k}", f"device2-{k}"
    at = start + timedelta(seconds=k)
    out: list[Message] = []

    def add(message: Message) -> None:
        nonlocal at
        at += timedelta(milliseconds=rng.randint(200, 900))
        message.setdefault("messageId", f"m-{k}-{len(out)}")
        message["timestamp"] = iso(at)
        out.append(message)

    def page(who: Message, path: str) -> None:
        add({"type": "page", **who, "properties": {"path": path}})

    for _ in range(rng.randint(1, 3)):
        page({"anonymousId": anon}, rng.choice(["/pricing", "/case-studies/globex", "/", "/demo"]))
    traits = {
        "email": f"{user}@example.com",
        "name": f"Person {k}",
        "title": rng.choice(["VP Sales", "Engineer", "Head of Growth", "Student"]),
        "company": {"size": rng.choice([20, 250, 900])},
        "industry": rng.choice(["software", "retail", "fintech"]),
    }
    add({"type": "identify", "userId": user, "anonymousId": anon, "traits": traits})
    if k % 4 == 1:  # a second device, merged later
        page({"anonymousId": other}, "/pricing")
        page({"anonymousId": other}, "/pricing/enterprise")
    for _ in range(rng.randint(2, 5)):
        choice = rng.random()
        if choice < 0.35:
            page({"userId": user}, "/pricing")
        elif choice < 0.5:
            add({"type": "track", "userId": user, "event": "Demo Requested"})
        elif choice < 0.65:
            add(
                {
                    "type": "track",
                    "userId": user,
                    "event": "Video Watched",
                    "properties": {"category": "case-study"},
                }
            )
        elif choice < 0.8:
            add({"type": "track", "userId": user, "event": "Guide Downloaded"})
        else:
            page({"anonymousId": anon}, "/pricing")  # the old cookie, after the merge
    if k % 4 == 1:
        add({"type": "identify", "userId": user, "anonymousId": other})
    if k % 5 == 2:
        add({"type": "alias", "previousId": f"crm-{k}", "userId": user})
    add({"type": "track", "userId": user, "event": "Demo Requested"})
    return out


def streams(people: int, clients: int, seed: int, batch: int = 8) -> list[list[list[Message]]]:
    """Per client, its requests: the people dealt to the clients in turn, each client's
    people interleaved message by message (each person's messages stay in their order) and
    cut into batches of `batch` messages."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(minutes=20)
    everyone = [person(k, rng, start) for k in range(people)]
    out: list[list[list[Message]]] = []
    for c in range(clients):
        queues = [list(p) for p in everyone[c::clients]]
        flat: list[Message] = []
        while any(queues):
            for queue in queues:
                if queue:
                    flat.append(queue.pop(0))
        out.append([flat[i : i + batch] for i in range(0, len(flat), batch)])
    return out


@dataclass
class Posted:
    acked: set[str] = field(default_factory=set)
    failed_over: int = 0  # requests sent again to another worker


def post_all(
    workers: list[Daemon],
    requests: list[list[list[Message]]],
    *,
    at_request: tuple[int, threading.Event] | None = None,
) -> Posted:
    """Client c posts its requests in order to worker c (modulo the workers), each after
    the previous answer; a worker that does not answer gets the request sent to the next
    one (the same messageIds: a duplicate is acknowledged once). `at_request` (n, event):
    client 0 sets the event after its n-th request."""
    posted = Posted()
    lock = threading.Lock()

    def client(c: int) -> None:
        for number, body in enumerate(requests[c]):
            if at_request is not None and c == 0 and number == at_request[0]:
                at_request[1].set()
            for attempt in range(len(workers) * 3):
                worker = workers[(c + attempt) % len(workers)]
                try:
                    answer = worker.post("/v1/batch", {"batch": body})
                except httpx.HTTPError:
                    with lock:
                        posted.failed_over += 1
                    continue
                if answer.status_code == 200:
                    with lock:
                        posted.acked.update(m["messageId"] for m in body)
                    break
                time.sleep(0.2)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return posted


def snapshot_rules(into: Path) -> Path:
    """A copy of the example rules, so that runs compared with each other use the same."""
    shutil.copytree(ROOT / "rules", into)
    return into


@contextmanager
def workers_on(
    root: Path, url: str, hook_url: str, count: int, rules: Path | None = None
) -> Iterator[list[Daemon]]:
    """`count` workers on the database `url`, each with its own directory and port (and
    the rules of `rules`, else the example rules as they are now)."""
    workers: list[Daemon] = []
    try:
        for n in range(count):
            (root / f"w{n}").mkdir(parents=True)
            worker = Daemon(root / f"w{n}", url, hook_url)
            worker.prepare()
            if rules is not None:
                shutil.rmtree(worker.root / "rules")
                shutil.copytree(rules, worker.root / "rules")
            worker.start()
            workers.append(worker)
        yield workers
    finally:
        for worker in workers:
            worker.stop()


def settle(workers: list[Daemon], timeout: float = 60) -> None:
    """Until every stored event is evaluated and every decision delivered (the counts are
    the database's, so any live worker answers for all)."""
    live = [w for w in workers if w.process is not None and w.process.poll() is None]
    live[0].settle(timeout=timeout)


def balanced(workers: list[Daemon], timeout: float = 30) -> float:
    """Seconds until the live workers hold every partition between them, none twice."""
    start = time.monotonic()
    live = [w for w in workers if w.process is not None and w.process.poll() is None]
    while time.monotonic() - start < timeout:
        held = [p for w in live for p in w.health().get("partitions", [])]
        if sorted(held) == list(range(PARTITIONS)) and all(
            w.health().get("partitions") for w in live
        ):
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"partitions not balanced: {[w.health() for w in live]}")


def partition_locks(url: str) -> int:
    """Partition leases held now, as PostgreSQL sees them."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = %s AND objsubid = 2 "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (PARTITION_LOCKS,),
        ).fetchone()
        assert row is not None
        return int(row[0])


def decisions_by_prospect(url: str) -> dict[str, list[Message]]:
    """Each prospect's decision records, in the order decided."""
    out: dict[str, list[Message]] = defaultdict(list)
    with psycopg.connect(url) as conn:
        for (record,) in conn.execute("SELECT record FROM decision ORDER BY seq"):
            parsed = json.loads(record)
            out[parsed["prospect"]].append(parsed)
    return dict(out)


def to_deliver(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT key FROM decision WHERE action IN ('notify', 'send')")
        return {key for (key,) in rows}


def stored(url: str) -> tuple[set[str], int]:
    """The stored messageIds, and how many events are still pending."""
    with psycopg.connect(url) as conn:
        ids = {m for (m,) in conn.execute("SELECT message_id FROM event")}
        row = conn.execute("SELECT count(*) FROM event WHERE status = 'pending'").fetchone()
        assert row is not None
        return ids, int(row[0])
