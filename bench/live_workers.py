"""Several workers, side by side: live throughput and latency of 1 and 2 `leadrules run`
workers on one PostgreSQL (docs/scale.md, "Several workers").

    python -m bench.live_workers --database-url postgresql://... [--workers 1 2] [--quick]

For each number of workers, on a new empty database:

- throughput: generated events (bench.generate) posted in batches of 100 by two clients per
  worker, each client to its worker, as fast as the workers answer; the rate is the events
  divided by the time from the first post until every one is evaluated (pending 0), so it
  counts evaluation, not only ingest;
- latency: a steady rate (500 events/s; one in twenty a `Demo Requested` that the example
  rules turn into a notification to sales), the batches dealt to the workers in turn, for
  30 s (10 s with --quick); latency is the webhook's arrival at a local receiver minus the
  post, both read in this process.

Figures in bench/README.md. The machine's other load shows in them: run it on an idle one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.live import (
    Receiver,
    delivery_delays,
    fresh_database,
    latency_batch,
    post_batches,
    year_batches,
)
from tests.daemon.cluster import workers_on
from tests.daemon.harness import KEY, Daemon


def throughput(workers: list[Daemon], events: int) -> dict[str, float]:
    batches = year_batches(events)
    began = time.perf_counter()
    ingested = post_batches(workers, batches)
    while workers[0].health()["pending_events"]:
        time.sleep(0.05)
    evaluated = time.perf_counter() - began
    return {"ingest_per_s": events / ingested, "evaluated_per_s": events / evaluated}


def latency(
    workers: list[Daemon], receiver: Receiver, seconds: int, rate: int = 500
) -> dict[str, float]:
    sent: dict[str, float] = {}
    clients = [httpx.Client(auth=(KEY, ""), timeout=30) for _ in workers]
    try:
        start = time.perf_counter()
        tick = 0
        while time.perf_counter() - start < seconds:
            batch = latency_batch(tick, rate // 10, sent)
            which = tick % len(workers)
            answer = clients[which].post(f"{workers[which].url}/v1/batch", json={"batch": batch})
            assert answer.status_code == 200, answer.text
            tick += 1
            pause = start + tick * 0.1 - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
    finally:
        for client in clients:
            client.close()
    delays = delivery_delays(sent, receiver)
    return {key: round(value, 1) if key.endswith("_ms") else value for key, value in delays.items()}


def run(url: str, count: int, events: int, seconds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, fresh_database(url) as fresh:
        assert fresh is not None
        receiver = Receiver()
        with workers_on(Path(tmp), fresh, receiver.url, count) as workers:
            result: dict[str, Any] = {"workers": count}
            result.update(throughput(workers, events))
            workers[0].settle(timeout=600)
            result["latency"] = latency(workers, receiver, seconds)
        receiver.server.shutdown()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("LEADRULES_TEST_POSTGRES_URL"), required=False
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="5,000 events, 10 s of latency")
    args = parser.parse_args(argv)
    if not args.database_url or not args.database_url.startswith("postgresql://"):
        print("several workers need PostgreSQL: --database-url postgresql://...", file=sys.stderr)
        return 2
    events = 5_000 if args.quick else args.events
    seconds = 10 if args.quick else 30
    results = []
    for count in args.workers:
        result = run(args.database_url, count, events, seconds)
        lat = result["latency"]
        print(
            f"{count} worker(s): {result['evaluated_per_s']:,.0f} events/s evaluated "
            f"(ingest {result['ingest_per_s']:,.0f}/s); latency p50 {lat['p50_ms']:.0f} ms, "
            f"p99 {lat['p99_ms']:.0f} ms, max {lat['max_ms']:.0f} ms "
            f"({lat['delivered']}/{lat['notifications']} delivered)",
            flush=True,
        )
        results.append(result)
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "live-workers.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
