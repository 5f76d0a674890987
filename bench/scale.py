"""`make bench` (scale): replay and backtest on one, two and a cluster's workers, against a
plain stdlib floor, measured side by side in one run.

Each round runs, one after the other on the same generated file: the floor (stdlib
`json.loads` of every line, then a sort by timestamp: a whole process), `leadrules replay
--workers 1`, `--workers 2`, `--cluster` on a local Dask cluster of two one-thread worker
processes (started once, before the rounds), then `replay` and `backtest` of the same
events gzipped, both with their default workers. Figures are medians over the rounds of
whole-process wall times; the CPU seconds (user + sys of the process and its workers) and
the load average are printed too, since on a shared machine the wall time shows the others'
work as well. The records of `--workers 1`, `--workers 2` and `--cluster` are compared byte
for byte.

Targets (bench/README.md): two workers at least 1.4x faster than one; the whole-process
replay at most 1.25x the floor; backtest under two minutes and at most 2.5x one replay.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.run import OUT, PY, ROOT, generate

FLOOR = """
import json, sys
rows = []
with open(sys.argv[1], "rb") as handle:
    for line in handle:
        if line.strip():
            rows.append(json.loads(line))
rows.sort(key=lambda row: str(row.get("timestamp")))
print(len(rows))
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args: list[str], out: Path | None = None) -> tuple[float, float]:
    """(wall s, CPU s) of one whole process and its workers."""
    cpu = _children_cpu()
    started = time.perf_counter()
    with open(out or os.devnull, "wb") as sink:
        done = subprocess.run(args, cwd=ROOT, stdout=sink, stderr=subprocess.PIPE)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 3):
        raise SystemExit(f"failed: {' '.join(args)}\n{done.stderr.decode()[-2000:]}")
    return wall, _children_cpu() - cpu


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _candidate() -> Path:
    """The example rules with the MQL threshold at 70 (docs/backtest.md)."""
    target = OUT / "candidate-mql70"
    if not target.exists():
        shutil.copytree(ROOT / "rules", target / "rules")
        shutil.copytree(ROOT / "config", target / "config")
        lifecycle = target / "rules" / "lifecycle.yaml"
        text = lifecycle.read_text()
        lifecycle.write_text(text.replace("mql_threshold: 80", "mql_threshold: 70"))
    return target


def _gzipped(path: Path) -> Path:
    target = path.with_suffix(".jsonl.gz")
    if not target.exists():
        with open(path, "rb") as source, gzip.open(target, "wb", compresslevel=1) as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
    return target


def _partition_seconds(path: Path) -> float:
    """CPU seconds of the partition pass alone (the part that runs in one process)."""
    from leadrules.engine.replay.partition import plan
    from leadrules.engine.replay.sources import EventFile

    started = time.process_time()
    plan([EventFile(str(path))], 2)
    return time.process_time() - started


def _on_local_cluster(cmd: list[str], out: Path, starts: list[float]) -> tuple[float, float]:
    """`cmd` against a local Dask cluster of two one-thread worker processes started for it
    (its start-up time is appended to `starts`, not counted in the command's)."""
    from distributed import LocalCluster

    started = time.perf_counter()
    cluster = LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.CRITICAL,  # a worker's last heartbeat races the scheduler's close
    )
    starts.append(time.perf_counter() - started)
    try:
        address = cluster.scheduler_address
        return timed([address if arg == "ADDRESS" else arg for arg in cmd], out)
    finally:
        cluster.close()


def stages(path: Path) -> dict[str, Any]:
    """CPU seconds, in this process: the floor, one process's replay, and each stage of a
    replay on two workers (the partition pass, each worker, the merge). On two free cores a
    two-worker replay takes about partition + the slower worker + merge."""
    from leadrules.engine.language.loader import load_rules
    from leadrules.engine.replay.dry_run import replay
    from leadrules.engine.replay.sources import EventFile
    from leadrules.engine.replay.workers import replay_workers

    rules, _ = load_rules(ROOT / "rules", ROOT / "config", references="warn")
    started = time.process_time()
    rows = []
    with open(path, "rb") as handle:
        for line in handle:
            if line.strip():
                rows.append(json.loads(line))
    rows.sort(key=lambda row: str(row.get("timestamp")))
    floor = time.process_time() - started
    del rows
    with open(os.devnull, "wb") as sink:
        started = time.process_time()
        replay([EventFile(str(path))], rules, sink)
        one = time.process_time() - started
        found: dict[str, Any] = {}
        replay_workers([EventFile(str(path))], rules, sink, workers=2, stages=found)
    critical = found["partition"] + max(found["workers"]) + found["merge"]
    return {"floor": floor, "one_process": one, "two_workers": found, "critical": critical}


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["--stages"]:
        print(json.dumps(stages(Path(sys.argv[2]))))
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200k events, two rounds")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--no-cluster", action="store_true", help="skip the Dask cluster")
    args = parser.parse_args(argv)
    size, prospects = (200_000, 5_000) if args.quick else (1_000_000, 25_000)
    rounds = args.rounds or (2 if args.quick else 3)
    path = generate(size, prospects)
    packed = _gzipped(path)
    candidate = _candidate()
    leadrules = [PY, "-m", "leadrules.engine.cli"]

    def replay(source: Path, *extra: str) -> list[str]:
        return [*leadrules, "replay", str(source), "--quiet", *extra]

    # The local cluster lives only for its own command, so that its idle processes never
    # share the cores with the other commands (`ADDRESS` is its scheduler's address).
    clustered = "replay --cluster (2 local workers)"
    commands: dict[str, list[str]] = {
        "floor: stdlib json.loads + sort": [PY, "-c", FLOOR, str(path)],
        "replay --workers 1": replay(path, "--workers", "1"),
        "replay --workers 2": replay(path, "--workers", "2"),
    }
    if not args.no_cluster:
        commands[clustered] = replay(path, "--cluster", "ADDRESS")
    commands["replay (default), gzip"] = replay(packed)
    commands["backtest (default), gzip"] = [
        *leadrules,
        "backtest",
        "--baseline",
        str(ROOT),
        "--candidate",
        str(candidate),
        str(packed),
        "--json",
        os.devnull,
        "--quiet",
    ]
    records = {
        "replay --workers 1": OUT / "scale-w1.jsonl",
        "replay --workers 2": OUT / "scale-w2.jsonl",
        "replay --cluster (2 local workers)": OUT / "scale-cluster.jsonl",
    }
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    load = [os.getloadavg()[0]]
    print(f"scale: {size:,} events, {prospects:,} prospects, {rounds} rounds", flush=True)
    cluster_starts: list[float] = []
    for n in range(rounds):
        for name, cmd in commands.items():
            if name == clustered:
                wall, cpu = _on_local_cluster(cmd, records[name], cluster_starts)
            else:
                wall, cpu = timed(cmd, records.get(name))
            walls[name].append(wall)
            cpus[name].append(cpu)
            print(f"  round {n + 1}: {name:<36} {wall:7.2f} s wall {cpu:7.2f} s CPU", flush=True)
        load.append(os.getloadavg()[0])
    cluster_start = statistics.median(cluster_starts) if cluster_starts else None
    if cluster_start is not None:
        print(f"  local Dask cluster (2 workers) started in {cluster_start:.2f} s", flush=True)
    same = {name: _digest(p) for name, p in records.items() if p.exists()}
    identical = len(set(same.values())) == 1
    wall = {name: statistics.median(v) for name, v in walls.items()}
    cpu = {name: statistics.median(v) for name, v in cpus.items()}
    partition = _partition_seconds(path)
    print("stages (CPU seconds in one process, median of the rounds):", flush=True)
    profiles = []
    for _ in range(rounds):
        done = subprocess.run(
            [PY, "-m", "bench.scale", "--stages", str(path)],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        profiles.append(json.loads(done.stdout))
    profile = {
        "floor": statistics.median(p["floor"] for p in profiles),
        "one_process": statistics.median(p["one_process"] for p in profiles),
        "partition": statistics.median(p["two_workers"]["partition"] for p in profiles),
        "slower_worker": statistics.median(max(p["two_workers"]["workers"]) for p in profiles),
        "merge": statistics.median(p["two_workers"]["merge"] for p in profiles),
        "critical": statistics.median(p["critical"] for p in profiles),
    }
    for name, value in profile.items():
        print(f"  {name:<38} {value:7.2f} s CPU", flush=True)
    one, two = wall["replay --workers 1"], wall["replay --workers 2"]
    floor = wall["floor: stdlib json.loads + sort"]
    backtest, replay_gz = wall["backtest (default), gzip"], wall["replay (default), gzip"]
    worker_cpu = (cpu["replay --workers 2"] - partition) / 2
    ratios = {
        "two workers' speedup (>= 1.4)": one / two,
        "replay --workers 2 / floor (<= 1.25)": two / floor,
        "replay --workers 1 / floor": one / floor,
        "backtest / replay (<= 2.5)": backtest / replay_gz,
        "backtest seconds (< 120)": backtest,
        # What two free cores would give, from CPU seconds (the wall times show the machine):
        # the partition pass runs alone, then the two workers side by side, then the merge.
        "from CPU: one process / (partition + slower worker + merge)": profile["one_process"]
        / profile["critical"],
        "from CPU: (partition + slower worker + merge) / floor": profile["critical"]
        / profile["floor"],
        "from whole-process CPU: w1 / (partition + half of w2)": cpu["replay --workers 1"]
        / (partition + worker_cpu),
    }
    if "replay --cluster (2 local workers)" in wall:
        ratios["cluster / --workers 2"] = wall["replay --cluster (2 local workers)"] / two
    print("medians:")
    for name in commands:
        print(f"  {name:<38} {wall[name]:7.2f} s wall {cpu[name]:7.2f} s CPU")
    print(f"  partition pass alone (in process)      {partition:7.2f} s CPU")
    print(f"  load average during the rounds: {min(load):.1f} to {max(load):.1f}")
    print(f"  records of 1 worker, 2 workers, cluster identical: {identical}")
    met = {
        "two workers' speedup (>= 1.4)": one / two >= 1.4,
        "replay --workers 2 / floor (<= 1.25)": two / floor <= 1.25,
        "backtest / replay (<= 2.5)": backtest / replay_gz <= 2.5,
        "backtest seconds (< 120)": backtest < 120,
    }
    for name, value in ratios.items():
        verdict = "" if name not in met else ("  met" if met[name] else "  NOT met")
        print(f"  {name:<58} {value:7.2f}{verdict}")
    results: dict[str, Any] = {
        "events": size,
        "rounds": rounds,
        "wall_s": wall,
        "cpu_s": cpu,
        "partition_cpu_s": partition,
        "stages_cpu_s": profile,
        "cluster_start_s": cluster_start,
        "load_average": [min(load), max(load)],
        "identical_records": identical,
        "ratios": ratios,
        "met": met,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    name = "scale-quick.json" if args.quick else "scale.json"
    (OUT / name).write_text(json.dumps(results, indent=2))
    for p in records.values():
        p.unlink(missing_ok=True)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
