"""Several rule sets over one history in one pass: each lane is an evaluator with its own
world and timers; the events are read, parsed, ordered and de-duplicated once.

Each lane has its own `Driver` (engine/core/driver.py), the loop replay and the daemon
use: for each lane, timers due before an event fire before it, events at the same instant
run before timers due then, and at the end time advances to the last event. The first lane decides duplicates (`messageId`
seen before); the others follow it, so every lane sees exactly the same events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from leadrules.engine.core.driver import Driver
from leadrules.engine.core.evaluator import Evaluator
from leadrules.engine.core.events import Event
from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.core.state import Decision, Timer
from leadrules.engine.core.turn import Compiled, Options
from leadrules.engine.replay import collector
from leadrules.engine.replay.dedupe import DEFAULT_WINDOW
from leadrules.engine.replay.memory_world import MemoryWorld
from leadrules.engine.replay.sources import EventFile, Item, OutOfOrder, Rejected, ordered

Collect = Callable[[list[Decision], int], None]  # decisions and the exact time they were made


class _Follower(MemoryWorld):
    """A lane's world that leaves duplicate detection to the first lane."""

    def seen(self, message_id: str) -> bool:
        return False


@dataclass
class Lane:
    rules: RuleSet
    collect: Collect | None = None
    options: Options = field(default_factory=Options)
    world: MemoryWorld = field(default_factory=MemoryWorld)
    evaluator: Evaluator | None = None
    # A lane that only needs some events says which (followers only; None: all of them).
    accepts: Callable[[Event], bool] | None = None

    driver: Driver | None = None

    def start(self, follower: bool) -> Driver:
        # the first lane decides duplicates, with replay's window (engine/replay/dedupe.py)
        self.world = _Follower() if follower else MemoryWorld(DEFAULT_WINDOW)
        self.evaluator = Evaluator(Compiled.build(self.rules), self.world, self.options)
        collect = self.collect

        def on_timer(timer: Timer, decisions: list[Decision]) -> None:
            if decisions and collect is not None:
                collect(decisions, timer.due)

        self.driver = Driver(self.evaluator, self.world.queue, on_timer=on_timer)
        return self.driver


@dataclass
class PassStats:
    events: int = 0
    duplicates: int = 0
    first_at: int | None = None
    last_at: int | None = None
    restarted: bool = False


def run_lanes(
    sources: list[EventFile],
    make_lanes: Callable[[], list[Lane]],
    observe: Callable[[Event], None],
    on_reject: Callable[[Rejected], None],
    on_bytes: Callable[[int], None] | None = None,
) -> tuple[list[Lane], PassStats]:
    """Run every lane over the sources. `make_lanes` is called again (and `observe` sees
    the events again) when the input is too far out of order to stream and is sorted."""
    reported: set[tuple[str, int]] = set()

    def reject(item: Rejected) -> None:
        key = (item.path, item.line)
        if key not in reported:
            reported.add(key)
            on_reject(item)

    with collector.paused():  # as in a replay: the state is large and long-lived
        try:
            return _pass(sources, make_lanes(), observe, reject, on_bytes, False)
        except OutOfOrder:
            lanes, stats = _pass(sources, make_lanes(), observe, reject, None, True)
            stats.restarted = True
            return lanes, stats


class LanePass:
    """The lanes over one stream of items: `events` runs them (and returns the last event's
    time), `finish` advances every lane's time to an end (the last event, or the latest
    last event of all partitions when the history is split: engine/replay/pool.py)."""

    def __init__(self, lanes: list[Lane], observe: Callable[[Event], None]) -> None:
        self.lanes = lanes
        self.observe = observe
        self.stats = PassStats()

    def events(self, items: Iterable[Item]) -> int | None:
        lanes, observe, stats = self.lanes, self.observe, self.stats
        first = lanes[0].start(follower=False).step
        advance = lanes[0].world.seen_ids.advance
        first_collect = lanes[0].collect
        others = [
            (lane.start(follower=True).step, lane.collect, lane.accepts) for lane in lanes[1:]
        ]
        last = None
        for ts, _, _, event in items:
            advance(ts)
            _, decisions = first(ts, event)
            if decisions is None:
                stats.duplicates += 1
                continue
            observe(event)  # before its decisions are collected: they may look at it
            if decisions and first_collect is not None:
                first_collect(decisions, ts)
            for step, collect, accepts in others:
                if accepts is not None and not accepts(event):
                    continue
                _, decisions = step(ts, event)
                if decisions and collect is not None:
                    collect(decisions, ts)
            stats.events += 1
            if stats.first_at is None:
                stats.first_at = ts
            last = ts
        stats.last_at = last
        return last

    def finish(self, end: int | None) -> None:
        if end is not None:
            for lane in self.lanes:
                assert lane.driver is not None
                lane.driver.fire_through(end)


def _pass(
    sources: list[EventFile],
    lanes: list[Lane],
    observe: Callable[[Event], None],
    reject: Callable[[Rejected], None],
    on_bytes: Callable[[int], None] | None,
    full_sort: bool,
) -> tuple[list[Lane], PassStats]:
    run = LanePass(lanes, observe)
    run.finish(run.events(ordered(sources, reject, full_sort=full_sort, on_bytes=on_bytes)))
    return lanes, run.stats
