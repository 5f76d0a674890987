"""The one loop that feeds the evaluator: events, and the timers that fall due between them.

Replay and the daemon both drive evaluation through `Driver`, so the ordering rule lives in
one place: before an event, every timer due *before* the event's instant fires (in due
order; ties in scheduling order), so events at an instant run before the timers due at that
instant. The caller says what "the event's instant" is (`before`): its timestamp in a
replay in timestamp order; in the daemon (and `replay --order received`) also its receive
time when it opens a new receipt (see `receipt_limits` and docs/rules.md, "Late events").

An item (event or timer) whose evaluation raises goes to `on_error`; a timer whose rule or
sequence no longer exists (a reload removed it) goes to `on_dropped` with the reason. The
loop itself is pure: no clock, no IO.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from leadrules.engine.core.evaluator import Evaluator
from leadrules.engine.core.events import Event
from leadrules.engine.core.state import Decision, Timer

OnEvent = Callable[[Event, "list[Decision] | None", Any], None]
OnTimer = Callable[[Timer, "list[Decision]"], None]
OnError = Callable[["Event | Timer", BaseException], None]
OnDropped = Callable[[Timer, str], None]


class TimerQueue:
    """Timers in due order, ties in the order they were scheduled. With a `horizon`, only
    timers due before it are held (`offer` says whether it took one); the caller keeps the
    others elsewhere (the daemon: its timer table)."""

    __slots__ = ("_seq", "heap", "horizon")

    def __init__(self, horizon: int | None = None) -> None:
        self.heap: list[tuple[int, int, Timer]] = []
        self._seq = 0
        self.horizon = horizon

    def push(self, timer: Timer) -> None:
        self._seq += 1
        heapq.heappush(self.heap, (timer.due, self._seq, timer))

    def offer(self, timer: Timer) -> bool:
        if self.horizon is not None and timer.due >= self.horizon:
            return False
        self.push(timer)
        return True

    def next_due(self) -> int | None:
        return self.heap[0][0] if self.heap else None

    def pop(self) -> Timer:
        return heapq.heappop(self.heap)[2]

    def __len__(self) -> int:
        return len(self.heap)


def _ignore(*_: Any) -> None:
    return None


def _raise(item: Event | Timer, exc: BaseException) -> None:
    raise exc


class Driver:
    """Evaluates events in the order given and the queue's timers between them."""

    __slots__ = (
        "evaluator",
        "held",
        "on_dropped",
        "on_error",
        "on_event",
        "on_held",
        "on_timer",
        "queue",
        "timers_fired",
    )

    def __init__(
        self,
        evaluator: Evaluator,
        queue: TimerQueue,
        *,
        on_event: OnEvent = _ignore,
        on_timer: OnTimer = _ignore,
        on_error: OnError = _raise,
        on_dropped: OnDropped = _ignore,
        held: set[str] | None = None,
        on_held: Callable[[Event | Timer], None] = _ignore,
    ) -> None:
        self.evaluator = evaluator
        self.queue = queue
        self.on_event = on_event
        self.on_timer = on_timer
        self.on_error = on_error
        self.on_dropped = on_dropped
        # Items known to fail (their key: messageId or timer key): set aside, not evaluated.
        self.held = held or set()
        self.on_held = on_held
        self.timers_fired = 0

    def run(self, items: Iterable[tuple[int, Event, Any]]) -> None:
        """Evaluate `(before, event, tag)` items in order; timers due before `before` fire
        first. `tag` is handed back to `on_event` untouched."""
        on_event = self.on_event
        step = self.step
        for before, event, tag in items:
            evaluated, decisions = step(before, event)
            if evaluated:
                on_event(event, decisions, tag)

    def step(self, before: int, event: Event) -> tuple[bool, list[Decision] | None]:
        """Fire the timers due before `before`, then evaluate `event`: (evaluated, its
        decisions — None for a duplicate). `evaluated` is False for an item held or one that
        raised (handed to `on_held` / `on_error`)."""
        heap = self.queue.heap
        if heap and heap[0][0] < before:
            self.fire_before(before)
        if self.held and event.message_id in self.held:
            self.on_held(event)
            return False, None
        try:
            return True, self.evaluator.on_event(event)
        except Exception as exc:
            self.on_error(event, exc)
            return False, None

    def fire_before(self, limit: int) -> int:
        """Fire every held timer due before `limit` (timers they schedule included)."""
        fired = 0
        heap = self.queue.heap
        evaluator = self.evaluator
        while heap and heap[0][0] < limit:
            timer = heapq.heappop(heap)[2]
            fired += 1
            if self.held and timer.key in self.held:
                self.on_held(timer)
                continue
            reason = evaluator.obsolete(timer)
            if reason is not None:
                self.on_dropped(timer, reason)
                continue
            try:
                decisions = evaluator.on_timer(timer)
            except Exception as exc:
                self.on_error(timer, exc)
                continue
            self.on_timer(timer, decisions)
        self.timers_fired += fired
        return fired

    def fire_through(self, end: int) -> int:
        """Fire every held timer due at or before `end` (the end of a replay, a tick)."""
        return self.fire_before(end + 1)


def receipt_limits(
    items: Iterable[tuple[int, int, Event]], last_received: int | None = None
) -> Iterator[tuple[int, Event, int]]:
    """`(ts, received_at, event)` in the order received -> `(before, event, received_at)`.

    The daemon's timers fire by its clock: what is due by the time a request is received
    fires before the request's events, and within a request each event is preceded only
    by the timers due before its timestamp. So the first event of a new receipt instant
    `r` fires timers due at or before `r` (or before its timestamp, if later)."""
    last = last_received
    for ts, received, event in items:
        if last is None or received > last:
            last = received
            yield (ts if ts > received else received + 1), event, received
        else:
            yield ts, event, received
