"""`make bench` / `make bench-quick`: replay speed against baselines measured in the same run.

Each figure is the median of several runs of a whole `leadrules replay` (or baseline) process
on the same generated file, so the ratios hold even when the machine's speed drifts:

- floor: read + JSON parse + validate + order only (what any replay must pay);
- durable: the same events asserted one by one into durable-rules with the example rules'
  clauses (the card's engine on its own, no scoring or state);
- replay: the full engine on the example rules (python matcher), and with `--matcher durable`;
- rules: throughput as the number of generated rules grows (10, 100, 1,000);
- memory: peak RSS of a replay at two sizes with the same number of prospects.

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


def _peak_rss(args: list[str]) -> int:
    """Peak RSS (KiB) of one process, measured by GNU time when present."""
    if Path("/usr/bin/time").exists():
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", *args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return int(done.stderr.decode().strip().splitlines()[-1])
    code = (
        f"import resource,subprocess,sys; subprocess.run({args!r}, stdout=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    return int(subprocess.run([PY, "-c", code], capture_output=True, cwd=ROOT).stdout)


def median_seconds(args: list[str], runs: int) -> float:
    return statistics.median(_seconds(args) for _ in range(runs))


def generate(events: int, prospects: int, seed: int = 7) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"events-{events}-{prospects}.jsonl"
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
        "engine.cli",
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under two minutes")
    parser.add_argument("--runs", type=int, default=None)
    args = parser.parse_args(argv)
    quick = args.quick
    runs = args.runs or (3 if quick else 5)
    size = 100_000 if quick else 1_000_000
    prospects = 5_000 if quick else 25_000
    results: dict[str, Any] = {
        "quick": quick,
        "events": size,
        "runs": runs,
        "python": sys.version.split()[0],
    }

    path = generate(size, prospects)
    rows: list[tuple[str, float]] = []

    def measure(name: str, cmd: list[str]) -> float:
        seconds = median_seconds(cmd, runs)
        rate = size / seconds
        rows.append((name, rate))
        results[name] = {"seconds": seconds, "events_per_s": rate}
        print(f"{name:<28} {rate:>12,.0f} events/s  ({seconds:.2f} s median of {runs})", flush=True)
        return rate

    floor = measure("floor (read+parse+order)", [PY, "-m", "bench.floor", str(path)])
    durable_raw = measure("durable-rules alone", [PY, "-m", "bench.durable_raw", str(path)])
    replay = measure("replay (python matcher)", replay_cmd(path))
    replay_durable = measure("replay (durable matcher)", replay_cmd(path, "--matcher", "durable"))
    results["ratios"] = {
        "replay / floor": replay / floor,
        "replay / durable-rules alone": replay / durable_raw,
        "replay python / replay durable": replay / replay_durable,
    }
    for name, value in results["ratios"].items():
        print(f"  {name:<34} {value:.2f}")

    results["rule_count"] = {}
    for count in (10, 100, 1000):
        rules_dir = OUT / f"rules-{count}"
        subprocess.run(
            [PY, "-m", "bench.rulegen", str(count), str(rules_dir)], cwd=ROOT, check=True
        )
        rate = size / median_seconds(replay_cmd(path, rules=str(rules_dir)), runs)
        results["rule_count"][count] = rate
        print(f"replay with {count:>5} rules       {rate:>12,.0f} events/s", flush=True)

    small, large = (100_000, 1_000_000) if quick else (1_000_000, 10_000_000)
    memory = {}
    for events in (small, large):
        memory[events] = _peak_rss(replay_cmd(generate(events, prospects)))
        print(f"peak RSS, {events:>10,} events   {memory[events] / 1024:>9,.0f} MiB", flush=True)
    results["peak_rss_kib"] = memory
    results["memory_ratio"] = memory[large] / memory[small]
    print(f"  peak RSS ratio {large:,} / {small:,}: {results['memory_ratio']:.2f}")

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
