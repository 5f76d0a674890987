"""The one driver: events before timers due at their instant, the timer queue, receipts,
and what happens to an item that raises or whose rule a reload removed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from leadrules.engine.core.driver import Driver, TimerQueue, receipt_limits
from leadrules.engine.core.evaluator import Evaluator
from leadrules.engine.core.events import Event, normalize
from leadrules.engine.core.state import Decision, Timer
from leadrules.engine.language.loader import load_rules
from leadrules.engine.replay.memory_world import MemoryWorld
from leadrules.engine.timefmt import US_PER_S, format_iso, parse_timestamp

ROOT = Path(__file__).resolve().parents[2]
T0 = parse_timestamp("2026-05-10T12:00:00Z")
HOUR = 3_600 * US_PER_S


def rules() -> Any:
    return load_rules(ROOT / "rules", ROOT / "config")[0]


def event(who: str, name: str, at: int, message_id: str) -> Event:
    return normalize(
        {
            "type": "track",
            "userId": who,
            "event": name,
            "timestamp": format_iso(at),
            "messageId": message_id,
        }
    )


class Log:
    """Everything the driver reports, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def on_event(self, e: Event, decisions: list[Decision] | None, tag: Any) -> None:
        self.seen.append(("event", (e.message_id, tag)))

    def on_timer(self, t: Timer, decisions: list[Decision]) -> None:
        self.seen.append(("timer", (t.kind, t.due, [d.record["rule"] for d in decisions])))

    def on_error(self, item: Event | Timer, exc: BaseException) -> None:
        self.seen.append(("error", type(exc).__name__))

    def on_dropped(self, t: Timer, reason: str) -> None:
        self.seen.append(("dropped", reason))


def driver(log: Log, evaluator: Evaluator, queue: TimerQueue) -> Driver:
    return Driver(
        evaluator,
        queue,
        on_event=log.on_event,
        on_timer=log.on_timer,
        on_error=log.on_error,
        on_dropped=log.on_dropped,
    )


def test_the_queue_orders_by_due_time_then_by_scheduling_order_and_honours_its_horizon() -> None:
    queue = TimerQueue(horizon=100)
    for due, token in ((50, "b"), (10, "a"), (50, "c")):
        assert queue.offer(Timer(due, "p", "expiry", token))
    assert not queue.offer(Timer(100, "p", "expiry", "late"))  # at the horizon: not held
    assert [queue.pop().token for _ in range(len(queue))] == ["a", "b", "c"]


def test_an_event_at_a_timers_instant_runs_before_it_and_a_later_one_after() -> None:
    world = MemoryWorld()
    log = Log()
    run = driver(log, Evaluator.for_rules(rules(), world), world.queue)
    # A demo (40) and a reply (20) and two pricing views (20): MQL, and the SLA 4h later.
    first = [
        event("u", "Demo Requested", T0, "a"),
        event("u", "Email Replied", T0, "b"),
        event("u", "Webinar Attended", T0, "c"),
        event("u", "Webinar Attended", T0, "d"),
    ]
    run.run((e.ts, e, n) for n, e in enumerate(first))
    assert world.queue.next_due() == T0 + 4 * HOUR
    at_due = event("u", "Lead Accepted", T0 + 4 * HOUR, "e")
    run.run([(at_due.ts, at_due, "at-due")])
    run.fire_through(T0 + 5 * HOUR)
    # The acceptance at the SLA's instant ran first: the SLA then found nothing to breach.
    assert log.seen[-2:] == [("event", ("e", "at-due")), ("timer", ("sla", T0 + 4 * HOUR, []))]
    assert run.timers_fired == 1


def test_an_item_that_raises_goes_to_on_error_and_the_rest_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = MemoryWorld()
    log = Log()
    evaluator = Evaluator.for_rules(rules(), world)
    on_event = evaluator.on_event

    def failing(e: Event) -> list[Decision] | None:
        if e.message_id == "bad":
            raise ValueError("bad input")
        return on_event(e)

    monkeypatch.setattr(evaluator, "on_event", failing)
    items = [event("u", "Demo Requested", T0 + n, m) for n, m in enumerate(("ok", "bad", "ok2"))]
    driver(log, evaluator, world.queue).run((e.ts, e, None) for e in items)
    assert log.seen == [
        ("event", ("ok", None)),
        ("error", "ValueError"),
        ("event", ("ok2", None)),
    ]


def test_without_on_error_the_exception_propagates() -> None:
    world = MemoryWorld()
    evaluator = Evaluator.for_rules(rules(), world)
    world.schedule(Timer(T0, "nobody", "bogus", "t"))  # type: ignore[arg-type]
    world.create("nobody")
    with pytest.raises(ValueError):

        def boom(timer: Timer) -> list[Decision]:
            raise ValueError(timer.kind)

        evaluator.on_timer = boom  # type: ignore[method-assign]
        Driver(evaluator, world.queue).fire_through(T0)


def test_a_timer_of_a_removed_sequence_is_dropped_with_the_reason_and_forgotten() -> None:
    world = MemoryWorld()
    log = Log()
    base = rules()
    evaluator = Evaluator.for_rules(base, world)
    views = [
        normalize(
            {
                "type": "page",
                "userId": "u",
                "properties": {"path": "/pricing"},
                "timestamp": format_iso(T0 + n),
                "messageId": f"v{n}",
            }
        )
        for n in range(3)
    ]
    driver(log, evaluator, world.queue).run((e.ts, e, None) for e in views)
    assert "roi-calculator" in world.states["u"].enrolments
    shorter = replace(
        base, sequences={k: v for k, v in base.sequences.items() if k != "roi-calculator"}
    )
    reloaded = Evaluator.for_rules(shorter, world)
    driver(log, reloaded, world.queue).fire_through(T0 + 10 * 24 * HOUR)
    assert log.seen[-1] == ("dropped", "sequence 'roi-calculator' is no longer in the rules")
    assert "roi-calculator" not in world.states["u"].enrolments


def test_receipt_limits_open_each_new_receipt_with_the_timers_due_by_then() -> None:
    e = event("u", "Demo Requested", T0, "x")
    items = [(T0, T0 + 10, e), (T0 - 5, T0 + 10, e), (T0 + 50, T0 + 20, e), (T0, T0 + 20, e)]
    assert [before for before, _, _ in receipt_limits(items)] == [
        T0 + 11,  # a new receipt: timers due by its receive time first
        T0 - 5,  # the same receipt: only those due before its timestamp
        T0 + 50,  # a new receipt with a later timestamp: before that
        T0,
    ]
    # A receipt already evaluated (the daemon after a restart) does not open again.
    assert [b for b, _, _ in receipt_limits(items[1:2], last_received=T0 + 10)] == [T0 - 5]


def test_an_absence_check_of_a_removed_trigger_is_dropped_with_the_reason() -> None:
    world = MemoryWorld()
    log = Log()
    base = rules()
    guide = event("u", "Guide Downloaded", T0, "g")
    driver(log, Evaluator.for_rules(base, world), world.queue).run([(guide.ts, guide, None)])
    assert world.states["u"].triggers["guide-then-silence"].absences
    fewer = replace(base, triggers=[t for t in base.triggers if t.id != "guide-then-silence"])
    driver(log, Evaluator.for_rules(fewer, world), world.queue).fire_through(T0 + 40 * 24 * HOUR)
    assert log.seen[-1] == ("dropped", "trigger 'guide-then-silence' is no longer in the rules")
    assert not world.states["u"].triggers["guide-then-silence"].absences
