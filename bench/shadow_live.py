"""What a shadow rule set costs live delivery: event -> delivery latency of a real
`leadrules run` without and with `shadow:` (a copy of the live rules, so the shadow does
all the work live does), runs alternated to spread the machine's noise over both.

    python -m bench.shadow_live [--seconds 10] [--rate 500] [--rounds 2] [--database-url URL]

Prints each run and the medians of the runs' p50 and p99 per mode, and the ratio with/without.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.live import Receiver, fresh_database, latency
from leadrules.engine.daemon.shadow_store import position
from leadrules.engine.daemon.store import Store
from tests.daemon.harness import Daemon


def run(database_url: str | None, shadow: bool, seconds: int, rate: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, fresh_database(database_url) as fresh:
        root = Path(tmp)
        receiver = Receiver()
        daemon = Daemon(root, fresh or f"sqlite:///{tmp}/bench.db", receiver.url)
        daemon.prepare()
        if shadow:
            shutil.copytree(root / "rules", root / "candidate")
            settings = root / "config" / "leadrules.yaml"
            settings.write_text(settings.read_text() + "shadow: candidate\n")
        daemon.start()
        try:
            out = latency(daemon, receiver, seconds, rate)
            if shadow:  # the shadow really ran: what it recorded, and how far behind it is
                store = Store(daemon.database_url)
                where = position(store)
                store.dispose()
                assert where is not None, "the shadow recorded nothing"
                out["shadow"] = f"{where.decisions} recorded, {where.events_behind} behind"
            return out
        finally:
            daemon.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rate", type=int, default=500, help="events per second (x10 batches)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    results: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for _ in range(args.rounds):
        for shadow in (False, True):
            lat = run(args.database_url, shadow, args.seconds, args.rate)
            results[shadow].append(lat)
            print(
                f"{'with' if shadow else 'without'} shadow: p50 {lat['p50_ms']:.0f} ms, "
                f"p99 {lat['p99_ms']:.0f} ms, max {lat['max_ms']:.0f} ms "
                f"({lat['delivered']}/{lat['notifications']} delivered) {lat.get('shadow', '')}",
                flush=True,
            )
    medians = {
        shadow: {q: statistics.median(r[q] for r in runs) for q in ("p50_ms", "p99_ms")}
        for shadow, runs in results.items()
    }
    for q in ("p50_ms", "p99_ms"):
        ratio = medians[True][q] / medians[False][q] if medians[False][q] else float("nan")
        print(
            f"{q[:3]}: without {medians[False][q]:.0f} ms, with {medians[True][q]:.0f} ms "
            f"(x{ratio:.2f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
