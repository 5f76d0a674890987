"""`make bench` / `make bench-quick`: replay speed against baselines measured in the same run.

Each figure is the median of several runs of a whole `leadrules replay` (or baseline) process
on the same generated file, so the ratios hold even when the machine's speed drifts:

- floor: read + JSON parse + validate + order only (what any replay must pay);
- durable: the same events asserted one by one into durable-rules with the example rules'
  clauses (the card's engine on its own, no scoring or state);
- replay: the full engine on the example rules (python matcher), and with `--matcher durable`;
- rules: throughput as the number of generated rules grows (10, 100, 1,000).

Memory (a replay's peak at 1M and 10M events, the same prospects) is bench/memory.py.

Writes a table to stdout and JSON to bench/out/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
PY = sys.executable


def _seconds(args: list[str]) -> float:
    """Wall seconds of one whole process."""
    started = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 3):
        raise SystemExit(f"failed: {' '.join(args)}\n{done.stderr.decode()[-2000:]}")
    return seconds


def median_seconds(args: list[str], runs: int) -> float:
    return statistics.median(_seconds(args) for _ in range(runs))


def generate(events: int, prospects: int, days: int = 365, seed: int = 7) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"events-{events}-{prospects}-{days}d.jsonl"
    if not path.exists():
        subprocess.run(
            [
                PY,
                "-m",
                "bench.generate",
                "--events",
                str(events),
                "--prospects",
                str(prospects),
                "--days",
                str(days),
                "--seed",
                str(seed),
                "--out",
                str(path),
            ],
            cwd=ROOT,
            check=True,
        )
    return path


def replay_cmd(path: Path, *extra: str, rules: str = "rules") -> list[str]:
    return [
        PY,
        "-m",
        "leadrules.engine.cli",
        "replay",
        str(path),
        "--rules",
        rules,
        "--out",
        os.devnull,
        "--quiet",
        *extra,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, about two minutes")
    parser.add_argument("--runs", type=int, default=None)
    args = parser.parse_args(argv)
    quick = args.quick
    runs = args.runs or (3 if quick else 5)
    size, small = (100_000, 20_000) if quick else (1_000_000, 100_000)
    prospects = 5_000 if quick else 25_000
    results: dict[str, Any] = {
        "quick": quick,
        "events": size,
        "runs": runs,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }

    def measure(name: str, path: Path, count: int, cmd: list[str], n: int = runs) -> float:
        seconds = median_seconds(cmd, n)
        rate = count / seconds
        results[name] = {"events": count, "seconds": seconds, "events_per_s": rate}
        print(
            f"{name:<34} {count:>10,} events {rate:>10,.0f} events/s  ({seconds:.2f} s, median of {n})",
            flush=True,
        )
        return rate

    path = generate(size, prospects)
    floor = measure("floor (read+parse+order)", path, size, [PY, "-m", "bench.floor", str(path)])
    replay = measure("replay, example rules", path, size, replay_cmd(path))
    sub = generate(small, prospects // 5)
    sub_replay = measure("replay, example rules (small)", sub, small, replay_cmd(sub))
    durable_raw = measure(
        "durable-rules matching alone", sub, small, [PY, "-m", "bench.durable_raw", str(sub)], 3
    )
    replay_durable = measure(
        "replay --matcher durable", sub, small, replay_cmd(sub, "--matcher", "durable"), 3
    )
    results["ratios"] = {
        "replay / floor": replay / floor,
        "replay / durable-rules matching alone": sub_replay / durable_raw,
        "replay / replay --matcher durable": sub_replay / replay_durable,
    }
    for name, value in results["ratios"].items():
        print(f"  {name:<40} {value:6.2f}")

    results["rule_count"] = {}
    for count in (10, 100, 1000):
        rules_dir = OUT / f"rules-{count}"
        subprocess.run(
            [PY, "-m", "bench.rulegen", str(count), str(rules_dir)], cwd=ROOT, check=True
        )
        rate = measure(
            f"replay, {count} generated rules",
            path,
            size,
            replay_cmd(path, rules=str(rules_dir)),
            3,
        )
        results["rule_count"][count] = rate

    OUT.mkdir(parents=True, exist_ok=True)
    name = "results-quick.json" if quick else "results.json"
    (OUT / name).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
