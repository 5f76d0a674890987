"""`leadrules replay --workers N`: the replay's prospects evaluated in N processes.

`partition.plan` deals merged identities to workers; each worker replays only its lines, on
the one driver, exactly as one process would replay them (a prospect's decisions depend on
its own events and timers only). The records are then merged into one process's order:

One process evaluates events in (timestamp, file, line) order and, before an event, fires
the timers due *before* its timestamp, in (due, scheduling order). So every item has a key
that places it without knowing the other partitions:

- an event: `(ts, 0, file, line)`;
- a timer: `(due, 1, key of the item that scheduled it, n)` — the n-th timer that item
  scheduled. Items are evaluated in key order, so scheduling order is key order.

An event at an instant sorts before the timers due at it and after those due earlier, as in
the driver. Each worker writes `(key, records of the item)` in key order and the parent
merges them: the output is byte for byte that of one process. The end of the replay (time
advanced to `until` or the last event) is the same for all workers: each reports its last
event, the parent sends the latest back, and the workers fire their timers through it.
"""

from __future__ import annotations

import gc
import heapq
import multiprocessing
import os
import pickle
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, wait
from typing import IO, Any, cast

import orjson

from leadrules.engine.core.driver import Driver, TimerQueue
from leadrules.engine.core.evaluator import Evaluator
from leadrules.engine.core.events import Event
from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.core.state import Decision, Timer
from leadrules.engine.core.turn import Compiled
from leadrules.engine.errors import LeadrulesError
from leadrules.engine.replay.dry_run import ReplayResult, ReplayStats
from leadrules.engine.replay.memory_world import MemoryWorld
from leadrules.engine.replay.partition import plan
from leadrules.engine.replay.sources import (
    REORDER_WINDOW,
    EventFile,
    Item,
    OutOfOrder,
    Rejected,
    _reordered,
    numbered_lines,
    parse_line,
)

Key = tuple[Any, ...]

# Below this much input, starting worker processes costs more than it saves (a worker
# imports the engine and compiles the rules in about half a second).
PARALLEL_BYTES = 8 << 20


def default_workers() -> int:
    """All the cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


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


def _lines(
    source: EventFile,
    index: int,
    mine: bytes,
    me: int,
    reject: Callable[[Rejected], None],
    progress: Any,
) -> Iterator[Item]:
    name = source.name
    read = 0
    with source.open() as handle:
        for number, line in numbered_lines(handle, name):
            if mine[number - 1] != me or not line.strip():
                continue
            read += len(line)
            if read > 1 << 20:  # the parent's progress bar
                progress.value += read
                read = 0
            event = parse_line(line, name, number, reject)
            if event is not None:
                yield (event.ts, index, number, event)
    progress.value += read


def _ordered(
    sources: list[EventFile],
    plans: list[bytes],
    me: int,
    reject: Any,
    full_sort: bool,
    progress: Any,
) -> Iterator[Item]:
    streams = [_lines(s, i, plans[i], me, reject, progress) for i, s in enumerate(sources)]
    if full_sort:
        everything = [item for stream in streams for item in stream]
        everything.sort()
        return iter(everything)
    return heapq.merge(*(_reordered(s, REORDER_WINDOW) for s in streams))


def _evaluate(
    sources: list[EventFile],
    compiled: Compiled,
    plans: list[bytes],
    me: int,
    until: int | None,
    full_sort: bool,
    rejected: list[Rejected],
    conn: Connection,
    progress: Any,
) -> tuple[ReplayStats, list[tuple[Key, bytes]]]:
    world = MemoryWorld()
    queue = world.queue = _KeyedQueue()
    world.timers = queue.heap
    evaluator = Evaluator(compiled, world, None)
    stats = ReplayStats()
    out: list[tuple[Key, bytes]] = []
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
        what = f"message {item.message_id!r}" if isinstance(item, Event) else f"timer {item.key}"
        cause = str(exc) if isinstance(exc, LeadrulesError) else repr(exc)
        raise LeadrulesError(f"evaluating {what} failed: {cause}") from exc

    driver = Driver(
        evaluator,
        queue,
        on_event=on_event,
        on_timer=on_timer,
        on_error=on_error,
        on_dropped=on_dropped,
    )

    def items() -> Iterator[tuple[int, Event, Key]]:
        for ts, index, number, event in _ordered(
            sources, plans, me, rejected.append, full_sort, progress
        ):
            if until is not None and ts > until:
                stats.after_until += 1
                continue
            yield ts, event, (ts, 0, index, number)

    driver.run(items())
    conn.send(("last", stats.last_at))
    end = conn.recv()
    if end is not None:
        driver.fire_through(end)
    stats.timers = driver.timers_fired
    stats.prospects = len(world.states)
    return stats, out


def _worker(
    names: list[tuple[str, str]],
    rules: bytes,
    matcher: str,
    plans: list[bytes],
    me: int,
    until: int | None,
    conn: Connection,
    progress: Any,
) -> None:
    """One worker process: replay the lines `plans` gives `me`, send the keyed records."""
    gc.set_threshold(200_000, 50, 1000)
    sources = []
    for name, path in names:
        source = EventFile(path)
        source.name = name
        sources.append(source)
    compiled = Compiled.build(pickle.loads(rules), matcher)
    try:
        rejected: list[Rejected] = []
        try:
            stats, out = _evaluate(
                sources, compiled, plans, me, until, False, rejected, conn, progress
            )
        except OutOfOrder:
            conn.send(("restart", None))
            rejected.clear()
            stats, out = _evaluate(
                sources, compiled, plans, me, until, True, rejected, conn, progress
            )
            stats.restarted = True
        conn.send(("done", (stats, out, rejected)))
    except BaseException as exc:
        conn.send(("error", repr(exc) if not isinstance(exc, LeadrulesError) else str(exc)))
    finally:
        conn.close()


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
) -> ReplayResult:
    """`dry_run.replay` in timestamp order on `workers` processes; the same bytes to `out`."""
    started = time.perf_counter()
    plans = plan(sources, workers, on_bytes)
    context = multiprocessing.get_context("spawn")
    names = [(s.name, str(s.path)) for s in sources]
    blob = pickle.dumps(rules)
    frozen = [bytes(p) for p in plans]
    conns: list[Connection] = []
    procs = []
    counters = [context.Value("q", 0, lock=False) for _ in range(workers)]
    reported = 0
    for me in range(workers):
        parent, child = context.Pipe()
        proc = context.Process(
            target=_worker,
            args=(names, blob, matcher, frozen, me, until, child, counters[me]),
            daemon=True,
        )
        proc.start()
        child.close()
        conns.append(parent)
        procs.append(proc)
    del frozen
    lasts: dict[int, int | None] = {}
    results: dict[int, tuple[ReplayStats, list[tuple[Key, bytes]], list[Rejected]]] = {}
    sent_end = False
    try:
        while len(results) < workers:
            if on_bytes is not None:
                done = sum(counter.value for counter in counters)
                on_bytes(done - reported)
                reported = done
            for ready in wait([c for i, c in enumerate(conns) if i not in results], 0.25):
                me = conns.index(cast(Connection, ready))
                try:
                    what, value = conns[me].recv()
                except EOFError as exc:
                    raise LeadrulesError(f"replay worker {me} stopped") from exc
                if what == "error":
                    raise LeadrulesError(value)
                if what == "last":
                    lasts[me] = value
                elif what == "restart":
                    lasts.pop(me, None)
                elif what == "done":
                    results[me] = value
            if not sent_end and len(lasts) == workers:
                known = [at for at in lasts.values() if at is not None]
                end = until if until is not None else (max(known) if known else None)
                for conn in conns:
                    conn.send(end)
                sent_end = True
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
    stats = ReplayStats()
    rejected: list[tuple[int, int, Rejected]] = []
    index = {s.name: i for i, s in enumerate(sources)}
    for me in range(workers):
        part, _, bad = results[me]
        _add(stats, part)
        rejected.extend((index.get(r.path, 0), r.line, r) for r in bad)
    rejected.sort(key=lambda item: item[:2])
    stats.lines_rejected = len(rejected)
    if on_reject is not None:
        for *_, item in rejected:
            on_reject(item)
    for _, chunk in heapq.merge(*(results[me][1] for me in range(workers)), key=_first):
        out.write(chunk)
    stats.seconds = time.perf_counter() - started
    world = MemoryWorld()
    known = [at for at in lasts.values() if at is not None]
    end = until if until is not None else (max(known) if known else None)
    return ReplayResult(stats, world, Evaluator(Compiled.build(rules, matcher), world), end)


def _first(item: tuple[Key, bytes]) -> Key:
    return item[0]


def _add(total: ReplayStats, part: ReplayStats) -> None:
    for name in ("events", "duplicates", "after_until", "timers", "decisions", "mqls"):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.prospects += part.prospects
    total.by_action.update(part.by_action)
    total.by_rule.update(part.by_rule)
    if part.first_at is not None:
        total.first_at = (
            part.first_at if total.first_at is None else min(total.first_at, part.first_at)
        )
    if part.last_at is not None:
        total.last_at = part.last_at if total.last_at is None else max(total.last_at, part.last_at)
    total.restarted = total.restarted or part.restarted
