"""`leadrules replay --workers N` (and `--cluster`): the replay's prospects evaluated in
partitions, the records merged back into one process's order.

`partition.plan` deals merged identities to partitions; each partition replays only its
lines, on the one driver, exactly as one process would replay them (a prospect's decisions
depend on its own events and timers only). The records are then merged into one process's
order:

One process evaluates events in (timestamp, file, line) order and, before an event, fires
the timers due *before* its timestamp, in (due, scheduling order). So every item has a key
that places it without knowing the other partitions:

- an event: `(ts, 0, file, line)`;
- a timer: `(due, 1, key of the item that scheduled it, n)` — the n-th timer that item
  scheduled. Items are evaluated in key order, so scheduling order is key order.

An event at an instant sorts before the timers due at it and after those due earlier, as in
the driver. Each partition returns `(key, records of the item)` in key order and the parent
merges them: the output is byte for byte that of one process. The end of the replay (time
advanced to `until` or the last event) is the same for all partitions: each reports its last
event, and all fire their timers through the latest (engine/replay/pool.py).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import orjson

from leadrules.engine.core.accounts import account_counts
from leadrules.engine.core.driver import Driver, TimerQueue
from leadrules.engine.core.evaluator import Evaluator
from leadrules.engine.core.events import Event
from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.core.state import Decision, Timer
from leadrules.engine.core.turn import Compiled
from leadrules.engine.errors import LeadrulesError
from leadrules.engine.replay.dedupe import DEFAULT_WINDOW
from leadrules.engine.replay.dry_run import ReplayResult, ReplayStats
from leadrules.engine.replay.memory_world import MemoryWorld
from leadrules.engine.replay.pool import Progress, default_workers, run_local
from leadrules.engine.replay.shares import Partitioned, ordered_rejections
from leadrules.engine.replay.sources import EventFile, OutOfOrder, Rejected
from leadrules.engine.replay.spill import SpilledRecords

__all__ = ["default_workers", "replay_workers"]

Key = tuple[Any, ...]


class _KeyedQueue(TimerQueue):
    """The driver's timer queue, remembering which item scheduled each timer."""

    __slots__ = ("keys", "pending")

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[Timer] = []
        self.keys: dict[int, Key] = {}

    def push(self, timer: Timer) -> None:
        super().push(timer)
        self.pending.append(timer)

    def settle(self, key: Key) -> None:
        """The timers pushed since the last call were scheduled by the item at `key`."""
        keys = self.keys
        for n, timer in enumerate(self.pending):
            keys[id(timer)] = (timer.due, 1, key, n)
        self.pending.clear()


Records = list[tuple[Key, bytes]] | SpilledRecords  # in key order
PartResult = tuple[ReplayStats, Records, list[Rejected]]


@dataclass
class ReplayJob:
    """A replay in partitions (a `pool.Job`): picklable, for Dask workers too."""

    parts: Partitioned
    rules: RuleSet
    matcher: str
    dedupe_window: int | None = DEFAULT_WINDOW
    spill: bool = False  # records to a temporary file (workers on this machine), not memory

    @property
    def partitions(self) -> int:
        return self.parts.partitions

    @property
    def until(self) -> int | None:
        return self.parts.until

    def open(self, me: int, progress: Progress) -> _ReplayTask:
        return _ReplayTask(self, me, progress)


class _ReplayTask:
    def __init__(self, job: ReplayJob, me: int, progress: Progress) -> None:
        self.job, self.me, self.progress = job, me, progress
        self.compiled = Compiled.build(job.rules, job.matcher)

    def run(self) -> int | None:
        try:
            return self._run(False)
        except OutOfOrder:
            last = self._run(True)
            self.stats.restarted = True
            return last

    def _run(self, full_sort: bool) -> int | None:
        world = MemoryWorld(self.job.dedupe_window)
        advance = world.seen_ids.advance
        queue = world.queue = _KeyedQueue()
        world.timers = queue.heap
        evaluator = Evaluator(self.compiled, world, None)
        self.world = world
        stats = self.stats = ReplayStats()
        out: Records = SpilledRecords() if self.job.spill else []
        self.out = out
        self.rejected: list[Rejected] = []
        until = self.job.until
        dumps = orjson.dumps
        by_action, by_rule = stats.by_action, stats.by_rule
        keys = queue.keys

        def emit(key: Key, decisions: list[Decision]) -> None:
            stats.decisions += len(decisions)
            chunk = bytearray()
            for decision in decisions:
                record = decision.record
                chunk += dumps(record)
                chunk += b"\n"
                by_action[record["action"]] += 1
                by_rule[record["rule"]] += 1
                if record["action"] == "set_stage" and record["stage"] == "mql":
                    stats.mqls += 1
            out.append((key, bytes(chunk)))

        def on_event(event: Event, decisions: list[Decision] | None, key: Key) -> None:
            if decisions is None:
                stats.duplicates += 1
                return
            queue.settle(key)
            stats.events += 1
            if stats.first_at is None:
                stats.first_at = event.ts
            stats.last_at = event.ts
            if decisions:
                emit(key, decisions)

        def on_timer(timer: Timer, decisions: list[Decision]) -> None:
            key = keys.pop(id(timer))
            queue.settle(key)
            if decisions:
                emit(key, decisions)

        def on_dropped(timer: Timer, _: str) -> None:
            keys.pop(id(timer), None)

        def on_error(item: Event | Timer, exc: BaseException) -> None:
            what = (
                f"message {item.message_id!r}" if isinstance(item, Event) else f"timer {item.key}"
            )
            cause = str(exc) if isinstance(exc, LeadrulesError) else repr(exc)
            raise LeadrulesError(f"evaluating {what} failed: {cause}") from exc

        self.driver = Driver(
            evaluator,
            queue,
            on_event=on_event,
            on_timer=on_timer,
            on_error=on_error,
            on_dropped=on_dropped,
        )
        progress = self.progress if not full_sort else _ignore

        def items() -> Iterator[tuple[int, Event, Key]]:
            for ts, index, number, event in self.job.parts.items(
                self.me, self.rejected.append, full_sort, progress
            ):
                if until is not None and ts > until:
                    stats.after_until += 1
                    continue
                advance(ts)
                yield ts, event, (ts, 0, index, number)

        self.driver.run(items())
        return stats.last_at

    def finish(self, end: int | None) -> PartResult:
        if end is not None:
            self.driver.fire_through(end)
        self.stats.timers = self.driver.timers_fired
        self.stats.prospects = len(self.world.states)
        accounts = self.world.accounts.values()  # an account's members share a partition
        self.stats.accounts, self.stats.account_mqls = account_counts(accounts)
        return self.stats, self.out, self.rejected


def _ignore(_: int) -> None:
    pass


def replay_workers(
    sources: list[EventFile],
    rules: RuleSet,
    out: IO[bytes],
    *,
    workers: int,
    until: int | None = None,
    matcher: str = "python",
    on_reject: Callable[[Rejected], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    cluster: str | None = None,
    dedupe_window: int | None = DEFAULT_WINDOW,
    stages: dict[str, Any] | None = None,
) -> ReplayResult:
    """`dry_run.replay` in timestamp order on `workers` processes (or, with `cluster`, on
    the Dask workers of the scheduler at that address); the same bytes to `out`.

    `stages`, when given, receives the CPU seconds of this process's partition pass and
    merge, and each local worker's (bench/scale.py: what two free cores would take)."""
    started = time.perf_counter()
    clock = time.process_time()
    cpu: list[float] = []
    if cluster is not None:
        from leadrules.engine.replay.cluster import connect, run_cluster, workers_of

        client = connect(cluster)
        try:
            partitions = workers if workers > 0 else workers_of(client)
            parts = Partitioned.of(sources, partitions, until, on_bytes)
            job = ReplayJob(parts, rules, matcher, dedupe_window)
            results, end = run_cluster(client, job, on_bytes)
        finally:
            client.close()
    else:
        parts = Partitioned.of(sources, workers, until, on_bytes)
        partitioned = time.process_time()
        job = ReplayJob(parts, rules, matcher, dedupe_window, spill=True)
        results, end = run_local(job, on_bytes, cpu)
        if stages is not None:
            stages["partition"] = partitioned - clock
            stages["workers"] = cpu
            clock = time.process_time()
    stats = merge_stats([part for part, _, _ in results])
    for item in ordered_rejections(sources, [bad for _, _, bad in results]):
        if on_reject is not None:
            on_reject(item)
        stats.lines_rejected += 1
    for _, chunk in heapq.merge(*(records for _, records, _ in results), key=_first):
        out.write(chunk)
    stats.seconds = time.perf_counter() - started
    if stages is not None:
        stages["merge"] = time.process_time() - clock
    world = MemoryWorld()
    return ReplayResult(stats, world, Evaluator(Compiled.build(rules, matcher), world), end)


def _first(item: tuple[Key, bytes]) -> Key:
    return item[0]


def merge_stats(parts: list[ReplayStats]) -> ReplayStats:
    total = ReplayStats()
    for part in parts:
        for name in (
            "events",
            "duplicates",
            "after_until",
            "timers",
            "decisions",
            "mqls",
            "accounts",
            "account_mqls",
        ):
            setattr(total, name, getattr(total, name) + getattr(part, name))
        total.prospects += part.prospects
        total.by_action.update(part.by_action)
        total.by_rule.update(part.by_rule)
        if part.first_at is not None:
            total.first_at = (
                part.first_at if total.first_at is None else min(total.first_at, part.first_at)
            )
        if part.last_at is not None:
            total.last_at = (
                part.last_at if total.last_at is None else max(total.last_at, part.last_at)
            )
        total.restarted = total.restarted or part.restarted
    return total
