"""Live figures: HTTP ingest rate and event -> delivery latency of a real `leadrules run`.

    python -m bench.live [--quick] [--database-url URL]

- ingest: generated events posted in batches of 100 by two client threads as fast as the
  daemon answers 200 (every message stored durably), SQLite by default or `--database-url`
  (on PostgreSQL, a new database beside the one named, dropped at the end);
- latency: a steady 1,000 events/s for 60 s (10 s with --quick) of which one in twenty is a
  `Demo Requested` that the example rules turn into a notification to sales; the channel is a
  webhook to a local receiver, and the latency is receipt time minus send time, both read in
  this process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bench.generate import generate
from tests.daemon.harness import KEY, Daemon


class Receiver:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                record = json.loads(body)["record"]
                receiver.arrivals.setdefault(record["prospect"], time.perf_counter())
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def ingest_rate(daemon: Daemon, events: int) -> float:
    # A year of history that ends today: the daemon refuses timestamps more than 7 days
    # after receipt, so a fixed calendar year would stop being accepted as it passes.
    start = (datetime.now(UTC) - timedelta(days=366)).date().isoformat()
    messages = list(generate(events, 11, prospects=max(100, events // 40), start=start))
    batches = [messages[i : i + 100] for i in range(0, len(messages), 100)]
    lock = threading.Lock()
    failures: list[str] = []

    def client() -> None:
        with httpx.Client(auth=(KEY, ""), timeout=60) as http:
            while True:
                with lock:
                    if not batches or failures:
                        return
                    batch = batches.pop()
                response = http.post(f"{daemon.url}/v1/batch", json={"batch": batch})
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text[:500]}")

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError(f"ingest refused a batch: {failures[0]}")
    return events / (time.perf_counter() - started)


def latency(daemon: Daemon, receiver: Receiver, seconds: int, rate: int = 1000) -> dict[str, float]:
    sent: dict[str, float] = {}
    with httpx.Client(auth=(KEY, ""), timeout=30) as http:
        start = time.perf_counter()
        tick = 0
        while time.perf_counter() - start < seconds:
            batch = []
            for i in range(rate // 10):
                n = tick * (rate // 10) + i
                if n % 20 == 0:
                    who = f"lat-{n}"
                    batch.append({"type": "track", "userId": who, "event": "Demo Requested"})
                else:
                    batch.append(
                        {
                            "type": "page",
                            "anonymousId": f"anon-lat-{n % 500}",
                            "properties": {"path": "/blog/x"},
                        }
                    )
            stamp = time.perf_counter()
            for m in batch:
                if m.get("event") == "Demo Requested":
                    sent[m["userId"]] = stamp
            assert http.post(f"{daemon.url}/v1/batch", json={"batch": batch}).status_code == 200
            tick += 1
            pause = start + tick * 0.1 - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
    deadline = time.perf_counter() + 60
    while (
        len([p for p in sent if p in receiver.arrivals]) < len(sent)
        and time.perf_counter() < deadline
    ):
        time.sleep(0.1)
    delays = sorted(
        (receiver.arrivals[p] - t) * 1000 for p, t in sent.items() if p in receiver.arrivals
    )
    return {
        "notifications": len(sent),
        "delivered": len(delays),
        "p50_ms": statistics.median(delays),
        "p99_ms": delays[max(0, int(len(delays) * 0.99) - 1)],
        "max_ms": delays[-1],
    }


@contextlib.contextmanager
def fresh_database(url: str | None) -> Iterator[str | None]:
    """An empty PostgreSQL database beside the one `url` names, dropped at the end, so that
    each run starts from the same empty schema (SQLite gets a new file anyway)."""
    if url is None or not url.startswith("postgresql://"):
        yield url
        return
    import psycopg

    name = f"lr_bench_{uuid.uuid4().hex[:12]}"
    base = url.rsplit("/", 1)[0]
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(base + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, fresh_database(args.database_url) as fresh:
        receiver = Receiver()
        url = fresh or f"sqlite:///{tmp}/bench.db"
        daemon = Daemon(Path(tmp), url, receiver.url)
        daemon.prepare()
        daemon.start()
        try:
            results["database"] = url.split(":")[0]
            results["ingest_events_per_s"] = ingest_rate(daemon, 10_000 if args.quick else 50_000)
            print(
                f"ingest ({results['database']}, batches of 100): {results['ingest_events_per_s']:,.0f} events/s",
                flush=True,
            )
            daemon.settle(timeout=600)
            results["latency"] = latency(daemon, receiver, 10 if args.quick else 60)
            lat = results["latency"]
            print(
                f"event -> delivery at 1,000 events/s: p50 {lat['p50_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms, "
                f"max {lat['max_ms']:.0f} ms ({lat['delivered']}/{lat['notifications']} delivered)",
                flush=True,
            )
        finally:
            daemon.stop()
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / f"live-{results['database']}.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
