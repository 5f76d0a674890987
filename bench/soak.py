"""Chaos soak: steady load on a real `leadrules run` that is killed with SIGKILL at random
moments and restarted, while its webhook receiver fails now and then.

    python -m bench.soak [--duration 120] [--kills 20] [--rate 100] [--postgres]
    make soak                      (SOAK_ARGS="--duration 60 --kills 20" to change)

The receiver dedupes by `Idempotency-Key`, checks every signature, and fails one request in
ten (`--fail-rate`): half before acting on it, half after (the answer is lost, as when a
connection drops), so redeliveries happen on purpose. A SIGTERM under load is sent in the
middle and at the end. Printed at the end, and written as JSON with `--json FILE`:

- accepted events lost: acknowledged with 200 but not in the store (after every kill and at
  the end; must be 0);
- decisions never delivered: notify/send decisions the receiver never acted on (0);
- effects twice: one decision acted on under two keys by the deduping receiver (0);
- redeliveries: requests for a key already acted on (at-least-once; counted);
- live equals replay: the daemon's decisions equal `leadrules replay` of the exported log
  (`--order received` when the CLI has it).

Exit status 1 when a must-be-zero figure is not zero or live and replay differ.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bench.generate import generate
from leadrules.adapters.webhook import HEADER, verify
from tests.daemon.harness import KEY, Daemon

SECRET = "s3cret"  # the harness's CRM_SECRET


class Receiver:
    """A CRM endpoint that acts once per `Idempotency-Key` and fails now and then."""

    def __init__(self, fail_rate: float, seed: int) -> None:
        self.rng = random.Random(seed)
        self.fail_rate = fail_rate
        self.lock = threading.Lock()
        self.acted: dict[str, dict[str, Any]] = {}  # key -> record
        self.requests = 0
        self.redeliveries = 0
        self.failed = 0
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver.handle(self.headers.get("Idempotency-Key", ""), body, self)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/crm"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, key: str, body: bytes, request: BaseHTTPRequestHandler) -> int:
        if not verify(SECRET, request.headers.get(HEADER, ""), body, time.time()):
            with self.lock:
                self.bad_signatures += 1
            return 401
        with self.lock:
            self.requests += 1
            roll = self.rng.random()
            if roll < self.fail_rate / 2:  # fails before acting
                self.failed += 1
                return 500
            if key in self.acted:
                self.redeliveries += 1
            else:
                self.acted[key] = json.loads(body)["record"]
            if roll < self.fail_rate:  # acted, but the answer is lost
                self.failed += 1
                return 500
            return 200


class Load:
    """Posts batches at a steady rate, retrying a batch until it is acknowledged."""

    def __init__(self, daemon: Daemon, rate: int, batch: int, seed: int) -> None:
        self.daemon, self.rate, self.batch = daemon, rate, batch
        self.messages = iter(generate(10**7, seed, prospects=2000, shuffle=0, duplicates=0.005))
        self.acked: set[str] = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.sent_batches = self.retries = self.rejected = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def next_batch(self) -> list[dict[str, Any]]:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        # Stamped now: the rules' windows and waits run at the pace of the soak.
        return [{**next(self.messages), "timestamp": now} for _ in range(self.batch)]

    def run(self) -> None:
        start, sent = time.monotonic(), 0
        with httpx.Client(auth=(KEY, ""), timeout=10) as http:
            while not self.stop.is_set():
                batch = self.next_batch()
                while not self.stop.is_set():
                    try:
                        response = http.post(f"{self.daemon.url}/v1/batch", json={"batch": batch})
                    except httpx.HTTPError:
                        response = None
                    if response is not None and response.status_code == 200:
                        with self.lock:
                            self.acked.update(m["messageId"] for m in batch)
                        self.sent_batches += 1
                        break
                    if response is not None and response.status_code == 400:
                        self.rejected += 1
                        break
                    self.retries += 1
                    time.sleep(0.2)
                sent += len(batch)
                pause = start + sent / self.rate - time.monotonic()
                if pause > 0:
                    self.stop.wait(pause)

    def snapshot(self) -> set[str]:
        with self.lock:
            return set(self.acked)


def stored_ids(url: str) -> set[str]:
    from sqlalchemy import text

    from leadrules.engine.daemon.store import Store

    store = Store(url)
    try:
        with store.engine.connect() as conn:
            return {r[0] for r in conn.execute(text("SELECT message_id FROM event"))}
    finally:
        store.dispose()


def fresh_postgres() -> str:
    import psycopg

    base = os.environ.get("LEADRULES_TEST_POSTGRES_URL")
    if not base:
        raise SystemExit("--postgres needs LEADRULES_TEST_POSTGRES_URL (bash .ci/postgres.sh)")
    name = f"soak_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.rsplit("/", 1)[0] + "/" + name


def prepare(root: Path, url: str, hook: str) -> Daemon:
    daemon = Daemon(root, url, hook)
    daemon.prepare()
    config = root / "config" / "leadrules.yaml"
    text = config.read_text().replace("max_attempts: 5", "max_attempts: 30")
    config.write_text(text)
    return daemon


def replay_matches(daemon: Daemon, url: str) -> dict[str, Any]:
    """Live decisions against a replay of the exported log: equal or not, the order used,
    how many were compared, and how many each side has that the other lacks."""
    from leadrules.engine.clock import WallClock
    from leadrules.engine.daemon.service import Service
    from leadrules.engine.daemon.store import Store
    from leadrules.engine.language.loader import load_rules

    exported = daemon.cli("export", "--database-url", url, "--out", "log.jsonl")
    assert exported.returncode == 0, exported.stderr
    has_order = b"--order" in daemon.cli("replay", "--help").stdout
    order = ["--order", "received"] if has_order else []
    replayed = daemon.cli("replay", "log.jsonl", *order, "--quiet", "--out", "replayed.jsonl")
    assert replayed.returncode in (0, 3), replayed.stderr
    replay = [json.loads(x) for x in (daemon.root / "replayed.jsonl").read_text().splitlines()]
    rules = load_rules(daemon.root / "rules", daemon.root / "config")[0]
    store = Store(url)
    live = Service(store, rules, WallClock()).decisions()
    store.dispose()

    def canon(records: list[dict[str, Any]]) -> Counter[str]:
        return Counter(json.dumps(r, sort_keys=True) for r in records)

    only_live, only_replay = canon(live) - canon(replay), canon(replay) - canon(live)
    for side, records in (("live", only_live), ("replay", only_replay)):
        for record in list(records)[:5]:
            print(f"only in {side}: {record}", file=sys.stderr)
    return {
        "live_equals_replay": not only_live and not only_replay,
        "replay_order": "received" if has_order else "timestamp",
        "decisions_compared": len(live),
        "decisions_only_live": sum(only_live.values()),
        "decisions_only_in_replay": sum(only_replay.values()),
    }


def soak(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    receiver = Receiver(args.fail_rate, args.seed)
    root = Path(args.workdir or tempfile.mkdtemp(prefix="leadrules-soak-"))
    url = args.database_url or (fresh_postgres() if args.postgres else f"sqlite:///{root}/soak.db")
    daemon = prepare(root, url, receiver.url)
    daemon.start()
    load = Load(daemon, args.rate, args.batch, args.seed)
    load.thread.start()
    lost_after_kill: list[int] = []
    sigterm_lost: list[int] = []
    kills = sigterms = 0
    restarts: list[float] = []
    started = time.monotonic()
    gap = args.duration / (args.kills + 1)
    midpoint = args.kills // 2
    while kills < args.kills:
        time.sleep(rng.uniform(0.4 * gap, 1.6 * gap) if kills else gap)
        graceful = kills == midpoint and sigterms == 0
        if graceful:
            daemon.stop()
            sigterms += 1
        else:
            daemon.kill()
            kills += 1
        acked = load.snapshot()  # everything acknowledged before the process died
        missing = len(acked - stored_ids(url))
        (sigterm_lost if graceful else lost_after_kill).append(missing)
        begin = time.monotonic()
        daemon.start()
        restarts.append(time.monotonic() - begin)
    time.sleep(min(5.0, gap))
    daemon.stop()  # SIGTERM under load, at the end
    sigterms += 1
    sigterm_lost.append(len(load.snapshot() - stored_ids(url)))
    load.stop.set()
    load.thread.join(timeout=30)
    elapsed = time.monotonic() - started
    daemon.start()  # deliver what is left, without load
    daemon.settle(timeout=args.settle)
    daemon.stop()
    acked = load.snapshot()
    compared = replay_matches(daemon, url)
    from sqlalchemy import text

    from leadrules.engine.daemon.store import Store

    store = Store(url)
    with store.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT key, status FROM decision WHERE action IN ('notify', 'send')")
        ).all()
    store.dispose()
    deliverable = {key for key, _ in rows}
    by_effect = Counter(
        json.dumps({k: v for k, v in r.items() if k != "key"}, sort_keys=True)
        for r in receiver.acted.values()
    )
    log = (root / "daemon.log").read_text(errors="replace")
    result = {
        "database": url.split(":")[0],
        "seconds": round(elapsed, 1),
        "sigkills": kills,
        "sigterms": sigterms,
        "events_acknowledged": len(acked),
        "batches_retried_by_client": load.retries,
        "restart_seconds_max": round(max(restarts, default=0.0), 1),
        "accepted_events_lost": len(acked - stored_ids(url)),
        "lost_right_after_a_sigkill": sum(lost_after_kill),
        "lost_after_sigterm_under_load": sum(sigterm_lost),
        "decisions_to_deliver": len(deliverable),
        "decisions_never_delivered": len(deliverable - set(receiver.acted)),
        "unknown_keys_at_receiver": len(set(receiver.acted) - deliverable),
        "effects_twice": sum(n - 1 for n in by_effect.values() if n > 1),
        "receiver_requests": receiver.requests,
        "receiver_failures_injected": receiver.failed,
        "redeliveries": receiver.redeliveries,
        "bad_signatures": receiver.bad_signatures,
        **compared,
        "tracebacks_in_log": log.count("Traceback"),
        "workdir": str(root),
    }
    return result


def main(argv: list[str] | None = None) -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=float(env("SOAK_DURATION", 120)))
    parser.add_argument("--kills", type=int, default=int(env("SOAK_KILLS", 20)))
    parser.add_argument("--rate", type=int, default=int(env("SOAK_RATE", 100)), help="events/s")
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--fail-rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=int(env("SOAK_SEED", 11)))
    parser.add_argument("--settle", type=float, default=180, help="seconds to drain at the end")
    parser.add_argument("--postgres", action="store_true", help="a fresh PostgreSQL database")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", default=None, metavar="FILE")
    parser.add_argument("--workdir", default=None, help="default: a new temporary directory")
    args = parser.parse_args(argv)
    print(
        f"soak: {args.duration:g} s, {args.kills} SIGKILLs, {args.rate} events/s, "
        f"receiver failing {args.fail_rate:.0%} ...",
        file=sys.stderr,
    )
    result = soak(args)
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    must_be_zero = (
        "accepted_events_lost",
        "lost_right_after_a_sigkill",
        "lost_after_sigterm_under_load",
        "decisions_never_delivered",
        "unknown_keys_at_receiver",
        "effects_twice",
        "bad_signatures",
    )
    ok = all(result[k] == 0 for k in must_be_zero) and result["live_equals_replay"]
    print("soak: ok" if ok else "soak: FAILED", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
