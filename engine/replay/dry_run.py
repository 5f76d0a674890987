"""`leadrules replay`: a dry run of the rules over historical events on simulated time.

Events are processed in timestamp order (or, with `--order received`, in the order the
daemon received them); the one driver (`core.driver`) fires timers (waits, SLAs, `unless`
windows, expiries) at their due times between events, after any event at the same instant;
at the end time advances to `until` (default: the last event's timestamp; in received
order, the latest timestamp or receive time). Nothing is sent: decisions are written as
JSON Lines.
"""

from __future__ import annotations

import heapq
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from leadrules.engine.core.accounts import account_counts
from leadrules.engine.core.driver import Driver, receipt_limits
from leadrules.engine.core.evaluator import Evaluator
from leadrules.engine.core.events import Event
from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.core.state import Decision, Timer
from leadrules.engine.core.turn import Compiled, Options
from leadrules.engine.errors import LeadrulesError
from leadrules.engine.replay import collector
from leadrules.engine.replay.dedupe import DEFAULT_WINDOW
from leadrules.engine.replay.memory_world import MemoryWorld
from leadrules.engine.replay.sources import (
    REORDER_WINDOW,
    EventFile,
    OutOfOrder,
    Rejected,
    ordered,
    parse_lines,
)
from leadrules.engine.replay.sources import _reordered as reorder
from leadrules.engine.timefmt import parse_timestamp


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
    accounts: int = 0  # with account rules (core.accounts)
    account_mqls: int = 0
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
    order: str = "timestamp",
    dedupe_window: int | None = DEFAULT_WINDOW,
) -> ReplayResult:
    """Replay `sources` under `rules`, writing decision records to `out`.

    `order="timestamp"`: what the rules would have done (events in timestamp order);
    `order="received"`: what the daemon did (events in the order received, `receivedAt`).
    `dedupe_window`: how long a `messageId` is remembered (µs; None: forever; dedupe.py).

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

    with tempfile.SpooledTemporaryFile(max_size=64 << 20) as buffer, collector.paused():
        try:
            result = _run(
                sources,
                compiled,
                buffer,
                until,
                options,
                reject,
                on_bytes,
                on_decisions,
                False,
                order,
                dedupe_window,
            )
        except OutOfOrder:
            buffer.seek(0)
            buffer.truncate()
            result = _run(
                sources,
                compiled,
                buffer,
                until,
                options,
                reject,
                None,
                on_decisions,
                True,
                order,
                dedupe_window,
            )
            result.stats.restarted = True
        result.stats.lines_rejected = len(reported)
        buffer.seek(0)
        while chunk := buffer.read(1 << 20):
            out.write(chunk)
    return result


def _received_items(
    sources: list[EventFile],
    reject: Callable[[Rejected], None],
    full_sort: bool,
    on_bytes: Callable[[int], None] | None,
) -> Iterator[tuple[int, int, Event]]:
    """Events in the order the daemon received them: by `receivedAt` (written by `leadrules
    export`; a message without it counts as received at its timestamp), ties in file order.
    Yields `(ts, received, event)`."""

    def keyed(source: EventFile, index: int) -> Iterator[tuple[int, int, int, Event]]:
        for ts, _, number, event in parse_lines(source, index, reject, on_bytes):
            text = event.raw.get("receivedAt")
            received = ts
            if text:
                try:
                    received = parse_timestamp(str(text))
                except ValueError:
                    reject(Rejected(source.name, number, f"receivedAt: not ISO 8601: {text!r}"))
                    continue
            yield received, index, number, event

    streams = [keyed(s, i) for i, s in enumerate(sources)]
    if full_sort:
        merged: Iterable[tuple[int, int, int, Event]] = sorted(
            item for stream in streams for item in stream
        )
    else:
        merged = heapq.merge(*(reorder(s, REORDER_WINDOW) for s in streams))
    for received, _, _, event in merged:
        yield event.ts, received, event


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
    order: str = "timestamp",
    dedupe_window: int | None = DEFAULT_WINDOW,
) -> ReplayResult:
    world = MemoryWorld(dedupe_window)
    advance = world.seen_ids.advance  # the duplicate filter's clock: each message's timestamp
    evaluator = Evaluator(compiled, world, options)
    stats = ReplayStats()
    started = time.perf_counter()
    dumps = orjson.dumps
    by_action, by_rule = stats.by_action, stats.by_rule
    write = out.write

    def emit(decisions: list[Decision]) -> None:
        stats.decisions += len(decisions)
        for decision in decisions:
            record = decision.record
            write(dumps(record))
            write(b"\n")
            by_action[record["action"]] += 1
            by_rule[record["rule"]] += 1
            if record["action"] == "set_stage" and record["stage"] == "mql":
                stats.mqls += 1
        if on_decisions is not None:
            on_decisions(decisions)

    def on_event(event: Event, decisions: list[Decision] | None, _: Any) -> None:
        if decisions is None:
            stats.duplicates += 1
            return
        stats.events += 1
        if stats.first_at is None:
            stats.first_at = event.ts
        stats.last_at = event.ts
        if decisions:
            emit(decisions)

    def on_timer(_: Timer, decisions: list[Decision]) -> None:
        if decisions:
            emit(decisions)

    def on_error(item: Event | Timer, exc: BaseException) -> None:
        what = f"message {item.message_id!r}" if isinstance(item, Event) else f"timer {item.key}"
        cause = str(exc) if isinstance(exc, LeadrulesError) else repr(exc)
        raise LeadrulesError(f"evaluating {what} failed: {cause}") from exc

    driver = Driver(evaluator, world.queue, on_event=on_event, on_timer=on_timer, on_error=on_error)
    end_hint: int | None = None
    if order == "received":
        latest = [0]

        def received() -> Iterator[tuple[int, int, Event]]:
            for ts, got, event in _received_items(sources, reject, full_sort, on_bytes):
                if until is not None and got > until:
                    stats.after_until += 1
                    continue
                latest[0] = max(latest[0], ts, got)
                advance(ts)
                yield ts, got, event

        driver.run(receipt_limits(received()))
        end_hint = latest[0] if stats.events or stats.duplicates else None
    else:

        def timestamped() -> Iterator[tuple[int, Event, None]]:
            for ts, _, _, event in ordered(sources, reject, full_sort=full_sort, on_bytes=on_bytes):
                if until is not None and ts > until:
                    stats.after_until += 1
                    continue
                advance(ts)
                yield ts, event, None

        driver.run(timestamped())
        end_hint = stats.last_at
    end = until if until is not None else end_hint
    if end is not None:
        driver.fire_through(end)
    stats.timers = driver.timers_fired
    stats.prospects = len(world.states)
    stats.accounts, stats.account_mqls = account_counts(world.accounts.values())
    stats.seconds = time.perf_counter() - started
    return ReplayResult(stats, world, evaluator, end)
