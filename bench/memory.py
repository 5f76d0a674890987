"""`make bench`: peak memory of a replay at two lengths of history with the same prospects.

    python -m bench.memory [--small 1000000] [--large 10000000] [--prospects 25000]
                           [--runs 1] [--workers 1 0]

The two inputs have the same prospects and the same rate of events (the large one covers
ten times the days), so a replay whose memory follows its prospects, not its history, has
the same peak at both; the target is large <= 1.5x small. Each size is replayed with
`--workers 1` and with the default (every core for large input), the two sizes in turn, so
both of a pair see the same machine.

Memory is the peak of the whole process tree (the replay and its workers): every 50 ms the
resident set sizes (`VmRSS` in /proc/PID/status) of the process and all its descendants are
added up; the peak of that sum is reported, with the largest single process's peak beside
it. Forked workers share their parent's pages until they write them, and a sum of RSS counts
such pages once per process, so the tree's figure is an upper bound. Linux only (/proc).

Writes a table to stdout and JSON to bench/out/memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.run import OUT, generate, replay_cmd

TARGET = 1.5
INTERVAL = 0.05


def _children() -> dict[int, list[int]]:
    """Parent pid -> its children's pids, from /proc/*/stat."""
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue  # gone meanwhile
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0  # gone, or a zombie (no VmRSS)


def tree_rss(root: int) -> tuple[int, int, int]:
    """(sum of RSS in KiB, largest single RSS, processes) of `root` and its descendants."""
    tree = _children()
    pending, total, largest, count = [root], 0, 0, 0
    while pending:
        pid = pending.pop()
        rss = _rss_kib(pid)
        total += rss
        largest = max(largest, rss)
        count += 1
        pending.extend(tree.get(pid, ()))
    return total, largest, count


@dataclass
class Peak:
    tree_kib: int = 0
    largest_kib: int = 0
    processes: int = 0
    seconds: float = 0.0


def measure(args: list[str]) -> Peak:
    """Run `args` to the end, sampling its process tree's memory."""
    peak = Peak()
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while proc.poll() is None:
        total, largest, count = tree_rss(proc.pid)
        peak.tree_kib = max(peak.tree_kib, total)
        peak.largest_kib = max(peak.largest_kib, largest)
        peak.processes = max(peak.processes, count)
        time.sleep(INTERVAL)
    peak.seconds = time.perf_counter() - started
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode not in (0, 3):
        raise SystemExit(f"failed: {' '.join(args)}\n{err[-2000:]}")
    return peak


def _mib(kib: float) -> str:
    return f"{kib / 1024:,.0f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--small", type=int, default=1_000_000, help="events (default 1M)")
    parser.add_argument("--large", type=int, default=10_000_000, help="events (default 10M)")
    parser.add_argument("--prospects", type=int, default=25_000)
    parser.add_argument("--days", type=int, default=365, help="days of the small input")
    parser.add_argument("--runs", type=int, default=1, help="pairs per mode (median)")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 0],
        help="modes: --workers N for each N; 0 is the default (no --workers)",
    )
    args = parser.parse_args(argv)
    if not Path("/proc/self/status").exists():
        print("bench.memory: needs /proc (Linux); skipped")
        return 0
    days_large = args.days * args.large // args.small
    paths = {
        args.small: generate(args.small, args.prospects, args.days),
        args.large: generate(args.large, args.prospects, days_large),
    }
    results: dict[str, Any] = {
        "small": {"events": args.small, "days": args.days},
        "large": {"events": args.large, "days": days_large},
        "prospects": args.prospects,
        "runs": args.runs,
        "target": TARGET,
        "how": "peak of the summed VmRSS of the replay's process tree, sampled every 50 ms",
        "modes": {},
    }
    met = True
    print(
        f"peak memory of a replay, {args.prospects:,} prospects: {args.small:,} events over "
        f"{args.days} days against {args.large:,} over {days_large} (process tree, RSS summed)",
        flush=True,
    )
    for workers in args.workers:
        mode = "default workers" if workers == 0 else f"--workers {workers}"
        extra = [] if workers == 0 else ["--workers", str(workers)]
        peaks: dict[int, list[Peak]] = {args.small: [], args.large: []}
        for _ in range(args.runs):
            for events in (args.small, args.large):  # a pair in turn: the same machine
                peak = measure(replay_cmd(paths[events], *extra))
                peaks[events].append(peak)
                print(
                    f"  {mode:<16} {events:>11,} events: tree {_mib(peak.tree_kib):>10}, "
                    f"largest process {_mib(peak.largest_kib):>10}, {peak.processes} "
                    f"process(es), {peak.seconds:6.1f} s",
                    flush=True,
                )
        small = statistics.median(p.tree_kib for p in peaks[args.small])
        large = statistics.median(p.tree_kib for p in peaks[args.large])
        ratio = large / small
        ok = ratio <= TARGET
        met = met and ok
        verdict = "met" if ok else f"NOT met: {ratio / TARGET - 1:.0%} over"
        print(f"  {mode:<16} ratio {ratio:.2f} (target <= {TARGET}): {verdict}", flush=True)
        results["modes"][mode] = {
            "peaks": {str(events): [vars(p) for p in found] for events, found in peaks.items()},
            "median_tree_kib": {"small": small, "large": large},
            "ratio": ratio,
            "met": ok,
        }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "memory.json").write_text(json.dumps(results, indent=2))
    print("memory target: " + ("met" if met else "not met (see the ratios above)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
