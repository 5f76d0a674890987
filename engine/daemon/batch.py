"""One transaction of the daemon's evaluation: the stored timers due before a horizon read
once into the driver's queue, the driver run over a slice of the event log or over due
timers, and everything it decided — states, timers, decisions, set-aside items — written
and committed together (`Batch.commit`). An item that raises ends the batch with
`Poisoned`, so the caller rolls back and runs it again without the item."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import orjson
from sqlalchemy import delete, insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from leadrules.engine.clock import Clock
from leadrules.engine.core.driver import Driver, TimerQueue
from leadrules.engine.core.evaluator import Evaluator
from leadrules.engine.core.events import Event
from leadrules.engine.core.state import Decision, Timer
from leadrules.engine.core.turn import Compiled, Options
from leadrules.engine.daemon import quarantine
from leadrules.engine.daemon.db_world import DbWorld, timer_from_row
from leadrules.engine.daemon.quarantine import Failure
from leadrules.engine.daemon.store import DecisionRow, TimerRow
from leadrules.engine.timefmt import parse_timestamp

OnDecisions = Callable[[list[Decision], int | None], None]


class ServiceState(Protocol):
    """What a batch reads of the service that runs it."""

    clock: Clock
    compiled: Compiled
    held: dict[str, Failure]  # items that raised, until recorded
    on_decisions: OnDecisions | None
    on_set_aside: Callable[[str, str], None] | None


def _deliverable_at(decision: Decision, now: int) -> int:
    """A send due in its channel's quiet hours waits for the window (`deliver_at`)."""
    due = decision.record.get("deliver_at")
    return max(now, parse_timestamp(due)) if isinstance(due, str) else now


class Poisoned(Exception):
    """Evaluating one item raised: the batch is rolled back and run again without it."""

    def __init__(self, key: str, failure: Failure) -> None:
        super().__init__(key)
        self.key, self.failure = key, failure


class Batch:
    """One transaction of evaluation through the driver: the timers due before `horizon`
    (of the prospects `timers` selects, else all) are read once into its queue; timers
    scheduled meanwhile that fall due before it join the queue in memory, the others are
    stored."""

    def __init__(
        self,
        service: ServiceState,
        session: Session,
        horizon: int,
        timers: ColumnElement[bool] | None = None,
    ) -> None:
        self.service = service
        self.session = session
        now = service.clock.now_us()
        self.now = now
        self.world = DbWorld(session, now)
        evaluator = Evaluator(service.compiled, self.world, Options(capture_context=True))
        self.made: list[tuple[list[Decision], int | None]] = []
        query = select(TimerRow).where(col(TimerRow.due_at) < horizon)
        if timers is not None:  # only some prospects' timers (`partitions.timers_of`)
            query = query.where(timers)
        rows = session.exec(query.order_by(col(TimerRow.due_at), col(TimerRow.seq))).all()
        self.queue = TimerQueue(horizon)
        for row in rows:
            self.queue.push(timer_from_row(row))
        self.stored = {row.key for row in rows}
        self.done_keys: list[str] = []  # stored timers fired, dropped or set aside
        self.set_aside: list[dict[str, Any]] = []
        self.world.on_schedule = self.queue.offer
        self.driver = Driver(
            evaluator,
            self.queue,
            on_event=self._on_event,
            on_timer=self._on_timer,
            on_error=self._on_error,
            on_dropped=self._on_dropped,
            held=set(service.held),
            on_held=self._on_held,
        )

    def _on_event(self, event: Event, decisions: list[Decision] | None, received: Any) -> None:
        self.made.append((decisions or [], received))

    def _on_timer(self, timer: Timer, decisions: list[Decision]) -> None:
        self.done_keys.append(timer.key)
        self.made.append((decisions, None))

    def _on_error(self, item: Event | Timer, exc: BaseException) -> None:
        if isinstance(exc, SQLAlchemyError):
            raise exc  # the database failed, not the item: the whole batch is tried again
        raise Poisoned(quarantine.item_key(item), quarantine.Failure.of(exc)) from exc

    def _on_dropped(self, timer: Timer, reason: str) -> None:
        self.done_keys.append(timer.key)
        self.set_aside.append(quarantine.record(timer, quarantine.OBSOLETE, reason, None, self.now))

    def _on_held(self, item: Event | Timer) -> None:
        failure = self.service.held[quarantine.item_key(item)]
        if isinstance(item, Timer):
            self.done_keys.append(item.key)
        self.set_aside.append(
            quarantine.record(item, quarantine.HELD, failure.error, failure.trace, self.now)
        )

    def commit(self) -> None:
        session = self.session
        fired = [k for k in self.done_keys if k in self.stored]
        if fired:
            session.execute(delete(TimerRow).where(col(TimerRow.key).in_(fired)))
        # Timers scheduled in this batch but not fired by its end (a late event's, say) are
        # stored; stored timers not reached stay in the table as they are.
        for _, _, timer in self.queue.heap:
            if timer.key not in self.stored:
                self.world.store_timer(timer)
        quarantine.write(session, self.set_aside)
        write_outcome(
            session, self.world, self.made, self.service.clock.now_us(), self.service.on_decisions
        )
        service = self.service
        for row in self.set_aside:
            service.held.pop(row["key"], None)
            if service.on_set_aside is not None:
                service.on_set_aside(row["kind"], row["status"])


def write_outcome(
    session: Session,
    world: DbWorld,
    made: list[tuple[list[Decision], int | None]],
    now: int,
    on_decisions: OnDecisions | None,
) -> None:
    """Write the batch's prospect states, timers and decisions (the outbox) and commit them
    in one transaction; then tell `on_decisions` (metrics, latency) what was decided."""
    world.flush()
    rows = [
        {
            "key": decision.key,
            "at": now,
            "prospect": decision.record["prospect"],
            "action": decision.record["action"],
            "rule": decision.record["rule"],
            "channel": decision.record.get("channel"),
            "record": orjson.dumps(decision.record).decode(),
            "context": None
            if decision.context is None
            else orjson.dumps(decision.context).decode(),
            "status": "pending" if decision.record["action"] in ("notify", "send") else "skipped",
            "attempts": 0,
            "next_attempt_at": _deliverable_at(decision, now),
            "created_at": now,
            "received_at": received_at,
            "last_error": None,
            "sent_at": None,
        }
        for decisions, received_at in made
        for decision in decisions
    ]
    if rows:
        session.execute(insert(DecisionRow), rows)
    session.commit()
    if on_decisions is not None:
        for decisions, received_at in made:
            if decisions:
                on_decisions(decisions, received_at)
