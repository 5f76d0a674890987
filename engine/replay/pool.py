"""Partitioned work on this machine's cores: one forked process per partition.

A *job* (`Job`) says how to open the work of partition `me` in a worker (`Job.open`), which
gives a `Task`: `run()` evaluates the partition's events and returns the timestamp of its
last one; `finish(end)` fires its timers through the end the partitions agreed on (the
latest last event, or `until`) and returns what the partition found. The parent collects the
lasts, sends the end back, and gathers the results in partition order. `cluster.py` runs the
same jobs on Dask workers.

Workers are forked: they start in milliseconds with the engine already imported, the rules
already compiled and the partition plan already in memory (nothing is pickled on the way in).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol, cast

from leadrules.engine.errors import LeadrulesError

Progress = Callable[[int], None]


class Task(Protocol):
    def run(self) -> int | None: ...

    def finish(self, end: int | None) -> Any: ...


class Job(Protocol):
    @property
    def partitions(self) -> int: ...

    @property
    def until(self) -> int | None: ...

    def open(self, me: int, progress: Progress) -> Task: ...


def default_workers() -> int:
    """All the cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def agreed_end(until: int | None, lasts: list[int | None]) -> int | None:
    """Where every partition's time ends: `until`, else the latest last event."""
    if until is not None:
        return until
    known = [at for at in lasts if at is not None]
    return max(known) if known else None


def _child(job: Job, me: int, conn: Connection, counter: Any) -> None:
    gc.disable()  # as in one process (replay.collector); the process ends with the task

    def progress(n: int) -> None:
        counter.value += n

    try:
        task = job.open(me, progress)
        conn.send(("last", task.run()))
        result = task.finish(conn.recv())
        conn.send(("done", (result, time.process_time())))
    except BaseException as exc:
        conn.send(("error", str(exc) if isinstance(exc, LeadrulesError) else repr(exc)))
    finally:
        conn.close()
    # Everything is sent: end now rather than tear down a large heap object by object
    # (about 0.2 s the parent would wait for at the year's size).
    os._exit(0)


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def run_local(
    job: Job, on_bytes: Progress | None = None, cpu: list[float] | None = None
) -> tuple[list[Any], int | None]:
    """Run every partition of `job` in its own process; their results and the agreed end.
    `cpu`, when given, receives each worker's CPU seconds (bench/scale.py)."""
    context = _context()
    workers = job.partitions
    counters = [context.Value("q", 0, lock=False) for _ in range(workers)]
    conns: list[Connection] = []
    procs = []
    for me in range(workers):
        parent, child = context.Pipe()
        proc = context.Process(target=_child, args=(job, me, child, counters[me]), daemon=True)
        proc.start()
        child.close()
        conns.append(parent)
        procs.append(proc)
    lasts: dict[int, int | None] = {}
    results: dict[int, Any] = {}
    seconds: dict[int, float] = {}
    end: int | None = None
    reported = 0
    try:
        while len(results) < workers:
            if on_bytes is not None:
                done = sum(counter.value for counter in counters)
                on_bytes(done - reported)
                reported = done
            waiting = [c for i, c in enumerate(conns) if i not in results]
            for ready in wait(waiting, 0.25):
                me = conns.index(cast(Connection, ready))
                try:
                    what, value = conns[me].recv()
                except EOFError as exc:
                    raise LeadrulesError(f"worker {me} stopped") from exc
                if what == "error":
                    raise LeadrulesError(value)
                if what == "last":
                    lasts[me] = value
                    if len(lasts) == workers:
                        end = agreed_end(job.until, list(lasts.values()))
                        for conn in conns:
                            conn.send(end)
                elif what == "done":
                    results[me], seconds[me] = value
        if on_bytes is not None:
            on_bytes(sum(counter.value for counter in counters) - reported)
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in conns:
            conn.close()
    if cpu is not None:
        cpu.extend(seconds[me] for me in range(workers))
    return [results[me] for me in range(workers)], end
