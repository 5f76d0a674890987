"""The daemon's only ways in: `ingest` (store events durably), `process_pending` (evaluate
them), `tick` (fire due timers). Each evaluation commits in one transaction with its state,
timers and decisions, so a crash at any point loses nothing and writes nothing twice.
Evaluation goes through the one driver (`core.driver`), in the order received; an item
that raises is set aside (`quarantine`) and the rest goes on.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import orjson
from sqlalchemy import delete, func, insert, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from leadrules.engine.clock import Clock
from leadrules.engine.core.driver import Driver, TimerQueue, receipt_limits
from leadrules.engine.core.evaluator import Evaluator
from leadrules.engine.core.events import Event, normalize
from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.core.state import Decision, Timer
from leadrules.engine.core.turn import Compiled, Options
from leadrules.engine.daemon import quarantine
from leadrules.engine.daemon.db_world import DbWorld, timer_from_row
from leadrules.engine.daemon.quarantine import Failure
from leadrules.engine.daemon.store import DecisionRow, EventRow, SetAsideRow, Store, TimerRow
from leadrules.engine.errors import EventError
from leadrules.engine.timefmt import format_iso, parse_timestamp

log = logging.getLogger("leadrules.daemon")

OnDecisions = Callable[[list[Decision], int | None], None]


def _deliverable_at(decision: Decision, now: int) -> int:
    """A send due in its channel's quiet hours waits for the window (`deliver_at`)."""
    due = decision.record.get("deliver_at")
    return max(now, parse_timestamp(due)) if isinstance(due, str) else now


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)  # {index, field, message}


def _stored_copy(raw: dict[str, Any], message_id: str, ts: int) -> dict[str, Any]:
    """The message as stored: a filled-in `messageId` and `timestamp` are written into it,
    so that exporting the log and replaying it gives the same decisions."""
    if raw.get("messageId") and (raw.get("timestamp") or raw.get("originalTimestamp")):
        return raw
    copy = dict(raw)
    copy["messageId"] = message_id
    if not (raw.get("timestamp") or raw.get("originalTimestamp")):
        copy["timestamp"] = format_iso(ts)
    return copy


class _Poisoned(Exception):
    """Evaluating one item raised: the batch is rolled back and run again without it."""

    def __init__(self, key: str, failure: Failure) -> None:
        super().__init__(key)
        self.key, self.failure = key, failure


class _Batch:
    """One transaction of evaluation through the driver: the timers due before `horizon`
    are read once into its queue; timers scheduled meanwhile that fall due before it join
    the queue in memory, the others are stored."""

    def __init__(self, service: Service, session: Session, horizon: int) -> None:
        self.service = service
        self.session = session
        now = service.clock.now_us()
        self.now = now
        self.world = DbWorld(session, now)
        evaluator = Evaluator(service._compiled, self.world, Options(capture_context=True))
        self.made: list[tuple[list[Decision], int | None]] = []
        rows = session.exec(
            select(TimerRow)
            .where(col(TimerRow.due_at) < horizon)
            .order_by(col(TimerRow.due_at), col(TimerRow.seq))
        ).all()
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
            held=set(service._held),
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
        raise _Poisoned(quarantine.item_key(item), quarantine.Failure.of(exc)) from exc

    def _on_dropped(self, timer: Timer, reason: str) -> None:
        self.done_keys.append(timer.key)
        self.set_aside.append(quarantine.record(timer, quarantine.OBSOLETE, reason, None, self.now))

    def _on_held(self, item: Event | Timer) -> None:
        failure = self.service._held[quarantine.item_key(item)]
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
        self.service._commit(session, self.world, self.made)
        service = self.service
        for row in self.set_aside:
            service._held.pop(row["key"], None)
            if service.on_set_aside is not None:
                service.on_set_aside(row["kind"], row["status"])


_UNSET = -1


class Service:
    def __init__(
        self, store: Store, rules: RuleSet, clock: Clock, *, matcher: str = "python"
    ) -> None:
        self.store = store
        self.clock = clock
        self.matcher = matcher
        self._compiled = Compiled.build(rules, matcher)
        self._lock = threading.Lock()  # one writer evaluates at a time
        # Ingest stamps receive times and commits under this lock, so receive times grow
        # with the log's order and a tick's `now` follows every event received before it.
        self._ingest_lock = threading.Lock()
        self._last_stamp = 0
        self._last_received: int | None = _UNSET  # of the last event evaluated
        self._held: dict[str, Failure] = {}  # items that raised, until recorded
        self.on_decisions: OnDecisions | None = None
        self.on_set_aside: Callable[[str, str], None] | None = None  # (kind, status)
        # Refuse timestamps more than 7 days after receipt (`core.events.MAX_AHEAD_US`). The
        # daemon, on wall time, turns it on; a Service on a simulated clock that feeds a
        # history in at time 0 leaves it off.
        self.refuse_future = False

    @property
    def rules(self) -> RuleSet:
        return self._compiled.rules

    def swap_rules(self, rules: RuleSet) -> None:
        """Use a new rule set from the next evaluation on; prospect state is kept."""
        compiled = Compiled.build(rules, self.matcher)
        with self._lock:
            self._compiled = compiled

    # -- ingest --------------------------------------------------------------------------

    def ingest(self, messages: list[Any], received_at: int | None = None) -> IngestResult:
        """Validate and store messages. The valid ones are committed before this returns;
        invalid ones are reported by index and field. A known messageId is accepted once."""
        with self._ingest_lock:
            if received_at is None:
                received = self._last_stamp = max(self.clock.now_us(), self._last_stamp)
            else:
                received = received_at
            return self._ingest(messages, received)

    def _ingest(self, messages: list[Any], received: int) -> IngestResult:
        result = IngestResult()
        rows = []
        for index, raw in enumerate(messages):
            try:
                event = normalize(
                    raw,
                    default_message_id=uuid.uuid4().hex,
                    default_ts=received,
                    received_at=received if self.refuse_future else None,
                )
            except EventError as exc:
                result.errors.append({"index": index, "field": exc.field, "message": exc.message})
                continue
            stored = _stored_copy(raw, event.message_id, event.ts)
            rows.append(
                {
                    "message_id": event.message_id,
                    "prospect": event.prospect,
                    "ts": event.ts,
                    "received_at": received,
                    "raw": orjson.dumps(stored).decode(),
                    "status": "pending",
                }
            )
        if rows:
            unique = list({row["message_id"]: row for row in reversed(rows)}.values())[::-1]
            result.duplicates += len(rows) - len(unique)
            insert = pg_insert if self.store.dialect == "postgresql" else sqlite_insert
            stmt = (
                insert(EventRow)
                .on_conflict_do_nothing(index_elements=["message_id"])
                .returning(col(EventRow.message_id))
            )
            with self.store.session() as session:
                # executemany with RETURNING: one cached statement, rows sent in bulk.
                inserted = len(session.execute(stmt, unique).all())
                session.commit()
            result.accepted += inserted
            result.duplicates += len(unique) - inserted
        return result

    # -- evaluation ----------------------------------------------------------------------

    def process_pending(self, limit: int = 100_000, batch: int = 500) -> int:
        """Evaluate stored events in arrival order, up to `batch` events per transaction
        (each batch commits whole or not at all). Before an event, the timers due before its
        timestamp fire, and before the first event of a new receipt, those due by its receive
        time (`core.driver.receipt_limits`). An item that raises is set aside and the batch
        runs again without it."""
        done = 0
        with self._lock:
            while done < limit:
                with self.store.session() as session:
                    rows = session.exec(
                        select(EventRow)
                        .where(col(EventRow.status) == "pending")
                        .order_by(col(EventRow.seq))
                        .limit(min(batch, limit - done))
                    ).all()
                    if not rows:
                        break
                    if self._last_received == _UNSET:
                        self._last_received = session.exec(
                            select(func.max(EventRow.received_at)).where(
                                col(EventRow.status) != "pending"
                            )
                        ).one()
                    raws = [orjson.loads(row.raw) for row in rows]
                    items = list(
                        receipt_limits(
                            (
                                (row.ts, row.received_at, normalize(raw))
                                for row, raw in zip(rows, raws, strict=True)
                            ),
                            self._last_received,
                        )
                    )
                    run = _Batch(self, session, max(before for before, _, _ in items))
                    run.world.prefetch(
                        str(raw[key])
                        for raw in raws
                        for key in ("userId", "anonymousId", "previousId")
                        if raw.get(key)
                    )
                    run.world.prefetch(t.prospect for _, _, t in run.queue.heap)
                    try:
                        run.driver.run(items)
                    except _Poisoned as poisoned:
                        session.rollback()
                        self._held[poisoned.key] = poisoned.failure
                        log.error("set aside %s: %s", poisoned.key, poisoned.failure.error)
                        continue
                    session.execute(
                        update(EventRow)
                        .where(col(EventRow.seq).in_([row.seq for row in rows]))
                        .where(col(EventRow.message_id).not_in(list(self._held)))
                        .values(status="done")
                    )
                    run.commit()
                    last = max(row.received_at for row in rows)
                    if self._last_received is None or last > self._last_received:
                        self._last_received = last
                done += len(rows)
        return done

    def tick(self, now_us: int | None = None) -> int:
        """Fire every timer due at or before now (overdue ones keep their due time). The
        events received by then are evaluated first, as the order of receipt demands."""
        with self._ingest_lock:
            now = self.clock.now_us() if now_us is None else now_us
            # What is received from now on is received after this tick: a new receipt, in
            # `receipt_limits`' terms, so a replay in received order fires what the tick
            # fires at the same place.
            self._last_stamp = max(self._last_stamp + 1, now + 1)
        self.process_pending(limit=10**9)
        fired = 0
        with self._lock:
            while True:
                with self.store.session() as session:
                    run = _Batch(self, session, now + 1)
                    if not run.queue.heap:
                        return fired
                    run.world.prefetch(t.prospect for _, _, t in run.queue.heap)
                    try:
                        fired += run.driver.fire_through(now)
                    except _Poisoned as poisoned:
                        session.rollback()
                        self._held[poisoned.key] = poisoned.failure
                        log.error("set aside %s: %s", poisoned.key, poisoned.failure.error)
                        continue
                    run.commit()

    def _commit(
        self, session: Session, world: DbWorld, made: list[tuple[list[Decision], int | None]]
    ) -> None:
        world.flush()
        now = self.clock.now_us()
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
                "status": "pending"
                if decision.record["action"] in ("notify", "send")
                else "skipped",
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
        if self.on_decisions is not None:
            for decisions, received_at in made:
                if decisions:
                    self.on_decisions(decisions, received_at)

    # -- reading back ------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        with self.store.session() as session:
            pending = session.exec(
                select(func.count()).select_from(EventRow).where(col(EventRow.status) == "pending")
            ).one()
            outbox = session.exec(
                select(func.count())
                .select_from(DecisionRow)
                .where(col(DecisionRow.status) == "pending")
            ).one()
            timers = session.exec(select(func.count()).select_from(TimerRow)).one()
            dead = session.exec(
                select(func.count())
                .select_from(DecisionRow)
                .where(col(DecisionRow.status) == "dead")
            ).one()
            held = session.exec(
                select(func.count())
                .select_from(SetAsideRow)
                .where(col(SetAsideRow.status) == quarantine.HELD)
            ).one()
        return {
            "pending_events": pending,
            "outbox_depth": outbox,
            "timers": timers,
            "dead_letters": dead,
            "set_aside": held,
        }

    def decisions(self) -> list[dict[str, Any]]:
        """Every decision record, in the order decided."""
        with self.store.session() as session:
            rows = session.exec(
                select(col(DecisionRow.record)).order_by(col(DecisionRow.seq))
            ).all()
        return [orjson.loads(r) for r in rows]

    def export(self, out: IO[bytes]) -> int:
        """The stored event log as Segment JSON Lines, in arrival order. Each message carries
        the daemon's receive time as `receivedAt` (microseconds), which
        `replay --order received` follows to reproduce the daemon's decisions."""
        count = 0
        with self.store.session() as session:
            rows = session.exec(
                select(col(EventRow.raw), col(EventRow.received_at)).order_by(col(EventRow.seq))
            )
            for raw, received_at in rows:
                message = orjson.loads(raw)
                message["receivedAt"] = format_iso(received_at)
                out.write(orjson.dumps(message) + b"\n")
                count += 1
        return count

    def pending_timers(self) -> list[Timer]:
        with self.store.session() as session:
            return DbWorld(session, 0).load_all_timers()
