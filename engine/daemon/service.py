"""The daemon's only ways in: `ingest` (store events durably), `process_pending` (evaluate
them), `tick` (fire due timers). Each evaluation commits in one transaction with its state,
timers and decisions, so a crash at any point loses nothing and writes nothing twice.
"""

from __future__ import annotations

import heapq
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import orjson
from sqlalchemy import delete, func, insert, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from leadrules.engine.clock import Clock
from leadrules.engine.core.evaluator import Evaluator
from leadrules.engine.core.events import normalize
from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.core.state import Decision, Timer
from leadrules.engine.core.turn import Compiled, Options
from leadrules.engine.daemon.db_world import DbWorld, timer_from_row
from leadrules.engine.daemon.store import DecisionRow, EventRow, Store, TimerRow
from leadrules.engine.errors import EventError
from leadrules.engine.timefmt import format_iso

OnDecisions = Callable[[list[Decision], int | None], None]


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


class _Batch:
    """One transaction of evaluation: the timers due up to `horizon` are read once into a
    heap; timers scheduled meanwhile that fall due within it join the heap in memory."""

    def __init__(
        self,
        service: Service,
        session: Session,
        horizon: int,
        *,
        inclusive: bool,
        most: int = 10**9,
    ) -> None:
        self.service = service
        self.session = session
        self.world = DbWorld(session, service.clock.now_us())
        self.evaluator = Evaluator(service._compiled, self.world, Options(capture_context=True))
        self.made: list[tuple[list[Decision], int | None]] = []
        self.horizon, self.inclusive = horizon, inclusive
        due = col(TimerRow.due_at) <= horizon if inclusive else col(TimerRow.due_at) < horizon
        rows = session.exec(
            select(TimerRow)
            .where(due)
            .order_by(col(TimerRow.due_at), col(TimerRow.seq))
            .limit(most)
        ).all()
        self.heap: list[tuple[int, int, Timer]] = [
            (r.due_at, i, timer_from_row(r)) for i, r in enumerate(rows)
        ]
        self._seq = len(rows)
        self.fired_keys: list[str] = []
        self.world.on_schedule = self._schedule

    def _schedule(self, timer: Timer) -> bool:
        if timer.due < self.horizon or (self.inclusive and timer.due == self.horizon):
            self._seq += 1
            heapq.heappush(self.heap, (timer.due, self._seq, timer))
            return True
        return False

    def fire(self, limit: int, *, inclusive: bool) -> int:
        """Fire the held timers due before `limit` (or at it, with `inclusive`)."""
        fired = 0
        heap = self.heap
        while heap and (heap[0][0] < limit or (inclusive and heap[0][0] == limit)):
            _, _, timer = heapq.heappop(heap)
            self.fired_keys.append(timer.key)
            self.made.append((self.evaluator.on_timer(timer), None))
            fired += 1
        return fired

    def commit(self) -> None:
        if self.fired_keys:
            self.session.execute(delete(TimerRow).where(col(TimerRow.key).in_(self.fired_keys)))
        # Timers read but not fired (the batch ended first) stay in the table as they are.
        self.service._commit(self.session, self.world, self.made)


class Service:
    def __init__(
        self, store: Store, rules: RuleSet, clock: Clock, *, matcher: str = "python"
    ) -> None:
        self.store = store
        self.clock = clock
        self.matcher = matcher
        self._compiled = Compiled.build(rules, matcher)
        self._lock = threading.Lock()  # one writer evaluates at a time
        self.on_decisions: OnDecisions | None = None

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
        received = self.clock.now_us() if received_at is None else received_at
        result = IngestResult()
        rows = []
        for index, raw in enumerate(messages):
            try:
                event = normalize(raw, default_message_id=uuid.uuid4().hex, default_ts=received)
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
        (each batch commits whole or not at all). Timers due before an event's time fire
        first, as in a replay."""
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
                    run = _Batch(self, session, max(row.ts for row in rows), inclusive=False)
                    raws = [orjson.loads(row.raw) for row in rows]
                    run.world.prefetch(
                        str(raw[key])
                        for raw in raws
                        for key in ("userId", "anonymousId", "previousId")
                        if raw.get(key)
                    )
                    run.world.prefetch(t.prospect for _, _, t in run.heap)
                    for row, raw in zip(rows, raws, strict=True):
                        run.fire(row.ts, inclusive=False)
                        event = normalize(raw)
                        run.made.append((run.evaluator.on_event(event) or [], row.received_at))
                    session.execute(
                        update(EventRow)
                        .where(col(EventRow.seq).in_([row.seq for row in rows]))
                        .values(status="done")
                    )
                    run.commit()
                done += len(rows)
        return done

    def tick(self, now_us: int | None = None) -> int:
        """Fire every timer due at or before now (overdue ones keep their due time)."""
        now = self.clock.now_us() if now_us is None else now_us
        fired = 0
        with self._lock:
            while True:
                with self.store.session() as session:
                    run = _Batch(self, session, now, inclusive=True)
                    if not run.heap:
                        return fired
                    run.world.prefetch(t.prospect for _, _, t in run.heap)
                    fired += run.fire(now, inclusive=True)
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
                "next_attempt_at": now,
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
        return {
            "pending_events": pending,
            "outbox_depth": outbox,
            "timers": timers,
            "dead_letters": dead,
        }

    def decisions(self) -> list[dict[str, Any]]:
        """Every decision record, in the order decided."""
        with self.store.session() as session:
            rows = session.exec(
                select(col(DecisionRow.record)).order_by(col(DecisionRow.seq))
            ).all()
        return [orjson.loads(r) for r in rows]

    def export(self, out: IO[bytes]) -> int:
        """The stored event log as Segment JSON Lines, in arrival order."""
        count = 0
        with self.store.session() as session:
            for raw in session.exec(select(col(EventRow.raw)).order_by(col(EventRow.seq))):
                out.write(raw.encode() + b"\n")
                count += 1
        return count

    def pending_timers(self) -> list[Timer]:
        with self.store.session() as session:
            return DbWorld(session, 0).load_all_timers()
