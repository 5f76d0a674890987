"""`leadrules replay`: a dry run of the rules over historical events on simulated time.

Events are processed in timestamp order; timers (waits, SLAs, `unless` windows, expiries)
fire at their due times between events, after any event at the same instant; at the end
time advances to `until` (default: the last event's timestamp). Nothing is sent: decisions
are written as JSON Lines.
"""

from __future__ import annotations

import gc
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

import orjson

from leadrules.engine.core.evaluator import Evaluator
from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.core.state import Decision
from leadrules.engine.core.turn import Compiled, Options
from leadrules.engine.errors import LeadrulesError
from leadrules.engine.replay.memory_world import MemoryWorld
from leadrules.engine.replay.sources import EventFile, OutOfOrder, Rejected, ordered


class StrictStop(LeadrulesError):
    """`--strict`: the first rejected line stops the replay."""

    def __init__(self, rejected: Rejected) -> None:
        self.rejected = rejected
        super().__init__(str(rejected))


@dataclass
class ReplayStats:
    lines_rejected: int = 0
    events: int = 0
    duplicates: int = 0
    after_until: int = 0
    timers: int = 0
    decisions: int = 0
    by_action: Counter[str] = field(default_factory=Counter)
    by_rule: Counter[str] = field(default_factory=Counter)
    mqls: int = 0
    prospects: int = 0
    first_at: int | None = None
    last_at: int | None = None
    seconds: float = 0.0
    restarted: bool = False

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass
class ReplayResult:
    stats: ReplayStats
    world: MemoryWorld
    evaluator: Evaluator
    end_at: int | None


def replay(
    sources: list[EventFile],
    rules: RuleSet,
    out: IO[bytes],
    *,
    until: int | None = None,
    matcher: str = "python",
    strict: bool = False,
    options: Options | None = None,
    on_reject: Callable[[Rejected], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    on_decisions: Callable[[list[Decision]], None] | None = None,
) -> ReplayResult:
    """Replay `sources` under `rules`, writing decision records to `out`.

    Streams sorted input; input too far out of order for that is read again and sorted in
    memory (the decisions written so far are discarded, and rejections are reported once).
    """
    compiled = Compiled.build(rules, matcher)
    reported: set[tuple[str, int]] = set()

    def reject(item: Rejected) -> None:
        if strict:
            raise StrictStop(item)
        key = (item.path, item.line)
        if key not in reported:
            reported.add(key)
            if on_reject is not None:
                on_reject(item)

    # A replay allocates millions of short-lived containers; the default collector
    # thresholds make it scan the growing prospect state over and over (about a fifth of
    # the run time). Collect young objects far less often while replaying.
    thresholds = gc.get_threshold()
    gc.set_threshold(200_000, 50, 1000)
    with tempfile.SpooledTemporaryFile(max_size=64 << 20) as buffer:
        try:
            result = _run(
                sources, compiled, buffer, until, options, reject, on_bytes, on_decisions, False
            )
        except OutOfOrder:
            buffer.seek(0)
            buffer.truncate()
            result = _run(
                sources, compiled, buffer, until, options, reject, None, on_decisions, True
            )
            result.stats.restarted = True
        result.stats.lines_rejected = len(reported)
        buffer.seek(0)
        while chunk := buffer.read(1 << 20):
            out.write(chunk)
    gc.set_threshold(*thresholds)
    return result


def _run(
    sources: list[EventFile],
    compiled: Compiled,
    out: IO[bytes],
    until: int | None,
    options: Options | None,
    reject: Callable[[Rejected], None],
    on_bytes: Callable[[int], None] | None,
    on_decisions: Callable[[list[Decision]], None] | None,
    full_sort: bool,
) -> ReplayResult:
    world = MemoryWorld()
    evaluator = Evaluator(compiled, world, options)
    stats = ReplayStats()
    started = time.perf_counter()
    dumps = orjson.dumps

    def emit(decisions: list[Decision]) -> None:
        if not decisions:
            return
        stats.decisions += len(decisions)
        for decision in decisions:
            record = decision.record
            out.write(dumps(record))
            out.write(b"\n")
            stats.by_action[record["action"]] += 1
            stats.by_rule[record["rule"]] += 1
            if record["action"] == "set_stage" and record["stage"] == "mql":
                stats.mqls += 1
        if on_decisions is not None:
            on_decisions(decisions)

    def fire_until(limit: int, inclusive: bool) -> None:
        while (due := world.next_due()) is not None and (
            due < limit or (inclusive and due <= limit)
        ):
            timer = world.pop_timer()
            stats.timers += 1
            emit(evaluator.on_timer(timer))

    last = None
    timers = world.timers
    on_event = evaluator.on_event
    for ts, _, _, event in ordered(sources, reject, full_sort=full_sort, on_bytes=on_bytes):
        if until is not None and ts > until:
            stats.after_until += 1
            continue
        # Events at the same instant as a timer are processed before the timer fires.
        if timers and timers[0][0] < ts:
            fire_until(ts, inclusive=False)
        decisions = on_event(event)
        if decisions is None:
            stats.duplicates += 1
            continue
        stats.events += 1
        if stats.first_at is None:
            stats.first_at = ts
        last = ts
        emit(decisions)
    stats.last_at = last
    end = until if until is not None else last
    if end is not None:
        fire_until(end, inclusive=True)
    stats.prospects = len(world.states)
    stats.seconds = time.perf_counter() - started
    return ReplayResult(stats, world, evaluator, end)
