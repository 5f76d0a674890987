"""`replay --cluster ADDRESS` and `backtest --cluster ADDRESS`: the partitions of a job
(engine/replay/pool.py) run on the workers of a Dask distributed scheduler.

Each partition is two tasks pinned to one worker: `_start` opens the partition and runs its
events (the task stays in the worker's memory, under the job's token), and returns the last
event's time; once every partition has reported, `_finish` fires the partition's timers
through the agreed end and returns what it found. The job (inputs by path, the partition
plan, the rules) is sent to each worker once. Each worker reads the input files itself, so
the paths must name the same files on every worker (a shared file system).

Why Dask distributed: on this 2-core machine a local cluster of two worker processes starts
in about 1.5 s (Ray: 4-6.5 s), a task's round trip is about 11 ms (Ray: 1.3 ms; a job has
two per partition, so it does not matter here), and it is a small pure-Python install
(`pip install 'leadrules[cluster]'`, about 25 MB with dask; Ray's wheel unpacks to 240 MB).
"""

from __future__ import annotations

import contextlib
import gc
import uuid
from typing import Any

from leadrules.engine.errors import LeadrulesError
from leadrules.engine.replay.pool import Job, Progress, Task, agreed_end

# In each worker process: the partitions between their two steps, by "token/partition".
_OPEN: dict[str, tuple[Task, tuple[int, int, int]]] = {}


def connect(address: str, timeout: float = 30) -> Any:
    """A Dask client of the scheduler at `address` (tcp://host:8786)."""
    try:
        from distributed import Client
    except ImportError:
        raise LeadrulesError(
            "--cluster needs Dask distributed: pip install 'leadrules[cluster]'"
        ) from None
    try:
        return Client(address, timeout=timeout, set_as_default=False)  # type: ignore[no-untyped-call]
    except OSError as exc:
        raise LeadrulesError(f"no Dask scheduler at {address}: {exc}") from None


def _start(job: Job, me: int, token: str) -> tuple[int | None, int]:
    """Phase one, in a worker: the partition's events; (last event, bytes read)."""
    read = [0]

    def progress(n: int) -> None:
        read[0] += n

    thresholds = gc.get_threshold()
    gc.set_threshold(200_000, 50, 1000)  # as in one process: large, long-lived state
    task = job.open(me, progress)
    last = task.run()
    _OPEN[f"{token}/{me}"] = (task, thresholds)
    return last, read[0]


def _finish(token: str, me: int, end: int | None) -> Any:
    """Phase two, on the same worker: the timers through `end`, and the partition's result."""
    task, thresholds = _OPEN.pop(f"{token}/{me}")
    try:
        return task.finish(end)
    finally:
        if not any(key.startswith(f"{token}/") for key in _OPEN):
            gc.set_threshold(*thresholds)


def _drop(token: str) -> None:
    """A job that failed: forget its partitions in this worker."""
    for key in [key for key in _OPEN if key.startswith(f"{token}/")]:
        del _OPEN[key]


def placement(client: Any, partitions: int) -> list[str]:
    """The worker address of each partition: round robin over the workers (one partition at
    a time per worker process; run workers with one thread each, docs/scale.md)."""
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    if not workers:
        raise LeadrulesError("the Dask cluster has no workers")
    return [workers[me % len(workers)] for me in range(partitions)]


def workers_of(client: Any) -> int:
    """How many worker processes the cluster has: the default number of partitions."""
    return max(1, len(client.scheduler_info(n_workers=-1)["workers"]))


def run_cluster(
    client: Any, job: Job, on_bytes: Progress | None = None
) -> tuple[list[Any], int | None]:
    """Run every partition of `job` on the cluster; their results and the agreed end."""
    from distributed import as_completed

    token = uuid.uuid4().hex
    where = placement(client, job.partitions)
    shared = client.scatter(job, broadcast=True, hash=False)
    try:
        started = [
            client.submit(
                _start,
                shared,
                me,
                token,
                workers=[where[me]],
                allow_other_workers=False,
                pure=False,
                key=f"leadrules-start-{token}-{me}",
            )
            for me in range(job.partitions)
        ]
        keys = [future.key for future in started]
        lasts: dict[int, int | None] = {}
        for future in as_completed(started, loop=client.loop):  # type: ignore[no-untyped-call]
            me = keys.index(future.key)
            try:
                last, read = future.result()
            except Exception as exc:
                raise LeadrulesError(f"partition {me} on {where[me]} failed: {exc}") from exc
            lasts[me] = last
            if on_bytes is not None:
                on_bytes(read)
        end = agreed_end(job.until, [lasts[me] for me in range(job.partitions)])
        finished = [
            client.submit(
                _finish,
                token,
                me,
                end,
                workers=[where[me]],
                allow_other_workers=False,
                pure=False,
                key=f"leadrules-finish-{token}-{me}",
            )
            for me in range(job.partitions)
        ]
        try:
            results = client.gather(finished)
        except Exception as exc:
            raise LeadrulesError(f"finishing the partitions failed: {exc}") from exc
    except BaseException:
        with contextlib.suppress(Exception):  # a cluster that is gone holds nothing
            client.run(_drop, token)
        raise
    return list(results), end
