"""The daemon's only ways in: `ingest` (store events durably), `process_pending` (evaluate
them), `tick` (fire due timers). Each evaluation commits in one transaction with its state,
timers and decisions, so a crash at any point loses nothing and writes nothing twice.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import orjson
from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from engine.clock import Clock
from engine.db_world import DbWorld, timer_from_row
from engine.errors import EventError
from engine.evaluator import Evaluator
from engine.events import normalize
from engine.ruleset import RuleSet
from engine.state import Decision, Timer
from engine.store import DecisionRow, EventRow, Store, TimerRow
from engine.timefmt import format_iso
from engine.turn import Compiled, Options

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
            insert = pg_insert if self.store.dialect == "postgresql" else sqlite_insert
            with self.store.session() as session:
                for row in rows:
                    stmt = (
                        insert(EventRow)
                        .values(**row)
                        .on_conflict_do_nothing(index_elements=["message_id"])
                        .returning(col(EventRow.seq))
                    )
                    if session.execute(stmt).first() is not None:
                        result.accepted += 1
                    else:
                        result.duplicates += 1
                session.commit()
        return result

    # -- evaluation ----------------------------------------------------------------------

    def process_pending(self, limit: int = 1000) -> int:
        """Evaluate stored events in arrival order. Timers due before an event's time fire
        first, as in a replay."""
        done = 0
        with self._lock:
            while done < limit:
                with self.store.session() as session:
                    row = session.exec(
                        select(EventRow)
                        .where(col(EventRow.status) == "pending")
                        .order_by(col(EventRow.seq))
                        .limit(1)
                    ).first()
                if row is None:
                    break
                self._fire_timers(row.ts, inclusive=False)
                self._evaluate_event(row.seq)
                done += 1
        return done

    def tick(self, now_us: int | None = None) -> int:
        """Fire every timer due at or before now (overdue ones keep their due time)."""
        now = self.clock.now_us() if now_us is None else now_us
        with self._lock:
            return self._fire_timers(now, inclusive=True)

    def _fire_timers(self, limit: int, *, inclusive: bool) -> int:
        fired = 0
        while True:
            with self.store.session() as session:
                condition = (
                    col(TimerRow.due_at) <= limit if inclusive else col(TimerRow.due_at) < limit
                )
                row = session.exec(
                    select(TimerRow)
                    .where(condition)
                    .order_by(col(TimerRow.due_at), col(TimerRow.seq))
                    .limit(1)
                ).first()
                if row is None:
                    return fired
                timer = timer_from_row(row)
                world = DbWorld(session, self.clock.now_us())
                decisions = Evaluator(
                    self._compiled, world, Options(capture_context=True)
                ).on_timer(timer)
                session.delete(row)
                self._commit(session, world, decisions, None)
            fired += 1

    def _evaluate_event(self, seq: int | None) -> None:
        with self.store.session() as session:
            row = session.get(EventRow, seq)
            if row is None or row.status != "pending":
                return
            event = normalize(orjson.loads(row.raw))
            world = DbWorld(session, self.clock.now_us())
            decisions = (
                Evaluator(self._compiled, world, Options(capture_context=True)).on_event(event)
                or []
            )
            row.status = "done"
            session.add(row)
            self._commit(session, world, decisions, row.received_at)

    def _commit(
        self, session: Session, world: DbWorld, decisions: list[Decision], received_at: int | None
    ) -> None:
        world.flush()
        now = self.clock.now_us()
        for decision in decisions:
            record = decision.record
            has_message = record["action"] in ("notify", "send")
            session.add(
                DecisionRow(
                    key=decision.key,
                    at=now,
                    prospect=record["prospect"],
                    action=record["action"],
                    rule=record["rule"],
                    channel=record.get("channel"),
                    record=orjson.dumps(record).decode(),
                    context=orjson.dumps(decision.context).decode()
                    if decision.context is not None
                    else None,
                    status="pending" if has_message else "skipped",
                    next_attempt_at=now,
                    created_at=now,
                    received_at=received_at,
                )
            )
        session.commit()
        if self.on_decisions is not None and decisions:
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
