"""The daemon's shadow rule set: a candidate evaluated beside live on the live stream, its
decisions recorded (`shadow_decision`), never delivered.

`ShadowRunner` reads the event log after its own cursor, in the order received (the order
live evaluates it, `core.driver.receipt_limits`), with its own prospect state in memory
(`ShadowWorld`), and fires its timers through the horizon live's last tick reached — the
timers live itself fired by then, so an identical candidate decides exactly what live did.
Each step writes its decisions and its cursor in one transaction. On a restart the state
is rebuilt by reading the log again up to the cursor, writing nothing; what follows the
cursor is recorded as before (docs/operations.md, "Shadow rule sets", has the cost).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import orjson
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from leadrules.engine.clock import Clock
from leadrules.engine.core.driver import Driver, receipt_limits
from leadrules.engine.core.evaluator import Evaluator
from leadrules.engine.core.events import Event, normalize
from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.core.state import Decision, Timer
from leadrules.engine.core.turn import Compiled
from leadrules.engine.daemon import shadow_store
from leadrules.engine.daemon.shadow_store import ShadowCursorRow, ShadowDecisionRow
from leadrules.engine.daemon.shadow_world import ShadowWorld
from leadrules.engine.daemon.store import EventRow, Store

log = logging.getLogger("leadrules.shadow")


class CursorMoved(Exception):
    """Another writer advanced the shadow's cursor: this runner's state is stale."""


class ShadowRunner:
    def __init__(
        self,
        store: Store,
        rules: RuleSet,
        clock: Clock,
        *,
        matcher: str = "python",
        batch: int = 500,
    ) -> None:
        self.store = store
        self.clock = clock
        self.matcher = matcher
        self.batch = batch
        self.rules = rules
        self._compiled = Compiled.build(rules, matcher)
        self._lock = threading.Lock()
        self._pending: tuple[RuleSet, Compiled] | None = None  # rules swapped in, not yet used
        self.generation: int | None = None  # the cursor's, once resumed; None: rebuild first
        self._fresh()

    def _fresh(self) -> None:
        self.world = ShadowWorld()
        self.evaluator = Evaluator(self._compiled, self.world)
        self.made: list[Decision] = []
        self.driver = Driver(
            self.evaluator,
            self.world.queue,
            on_event=self._on_event,
            on_timer=self._on_timer,
            on_error=self._on_error,
        )
        self.event_seq = 0
        self.fired_through: int | None = None
        self.last_received: int | None = None
        self.errors = 0

    # -- the driver's callbacks --------------------------------------------------------

    def _on_event(self, event: Event, decisions: list[Decision] | None, received: Any) -> None:
        if decisions:
            self.made += decisions

    def _on_timer(self, timer: Timer, decisions: list[Decision]) -> None:
        if decisions:
            self.made += decisions

    def _on_error(self, item: Event | Timer, exc: BaseException) -> None:
        # The candidate failing on an item is the candidate's problem: live never sees it.
        what = f"message {item.message_id!r}" if isinstance(item, Event) else f"timer {item.key}"
        log.warning("shadow rules failed on %s: %r", what, exc)
        self.errors += 1

    # -- rules ---------------------------------------------------------------------------

    def swap_rules(self, rules: RuleSet) -> None:
        """Use a new candidate from the next batch on; the shadow's state is kept (as live's
        is on a reload). Never waits for a step: a long first reading of the log must not
        hold up the daemon's reload check."""
        self._pending = (rules, Compiled.build(rules, self.matcher))

    def _take_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            self.rules, self._compiled = pending
            self.evaluator.compiled = self._compiled

    # -- reading the log -----------------------------------------------------------------

    def _read(self, session: Session, through: int | None) -> int:
        """Evaluate the next batch of events after the cursor (up to seq `through`)."""
        query = select(EventRow.seq, EventRow.ts, EventRow.received_at, EventRow.raw).where(
            col(EventRow.seq) > self.event_seq
        )
        if through is not None:
            query = query.where(col(EventRow.seq) <= through)
        rows = session.exec(query.order_by(col(EventRow.seq)).limit(self.batch)).all()
        if not rows:
            return 0
        items = receipt_limits(
            ((ts, received, normalize(orjson.loads(raw))) for _, ts, received, raw in rows),
            self.last_received,
        )
        self.driver.run(items)
        self.event_seq = int(rows[-1][0] or 0)
        last = max(received for _, _, received, _ in rows)
        if self.last_received is None or last > self.last_received:
            self.last_received = last
        return len(rows)

    def _fire(self, horizon: int | None) -> bool:
        """Fire the timers due through `horizon` when it moved on."""
        if horizon is None or (self.fired_through is not None and horizon <= self.fired_through):
            return False
        self.driver.fire_through(horizon)
        self.fired_through = horizon
        return True

    def _resume(self) -> None:
        """Take up the stored cursor (a first one when none is stored) and rebuild the state
        it stands for by reading the log up to it, writing nothing."""
        now = self.clock.now_us()
        upsert = pg_insert if self.store.dialect == "postgresql" else sqlite_insert
        with self.store.session() as session:
            session.execute(
                upsert(ShadowCursorRow)
                .values(
                    name=shadow_store.NAME,
                    event_seq=0,
                    generation=0,
                    errors=0,
                    rules_version=self.rules.version,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["name"])
            )
            session.commit()
            row = shadow_store.cursor(session)
            assert row is not None
            self._fresh()
            while self.event_seq < row.event_seq and self._read(session, row.event_seq):
                pass
            self.event_seq = row.event_seq
            self._fire(row.fired_through)
            self.made = []
            self.last_received = row.last_received
            self.errors, self.generation = row.errors, row.generation

    # -- a step ----------------------------------------------------------------------------

    def step(self, horizon: int | None) -> int:
        """Evaluate the events stored after the cursor, then fire the timers due through
        `horizon` (live's last tick); record the decisions. Returns how many."""
        recorded = 0
        with self._lock:
            try:
                self._take_pending()
                if self.generation is None:
                    self._resume()
                while True:
                    self._take_pending()
                    with self.store.session() as session:
                        read = self._read(session, None)
                        more = read == self.batch
                        fired = False if more else self._fire(horizon)
                        if read or fired:
                            recorded += self._write(session)
                    if not more:
                        return recorded
            except BaseException:
                self.generation = None  # memory is ahead of the database: rebuild next time
                raise

    def _write(self, session: Session) -> int:
        """The batch's decisions and the new cursor, in one transaction."""
        now = self.clock.now_us()
        version = self.rules.version
        rows = [
            {
                "key": d.key,
                "at": now,
                "prospect": d.record["prospect"],
                "action": d.record["action"],
                "rule": d.record["rule"],
                "channel": d.record.get("channel"),
                "record": orjson.dumps(d.record).decode(),
                "rules_version": version,
            }
            for d in self.made
        ]
        assert self.generation is not None
        moved = session.execute(
            update(ShadowCursorRow)
            .where(col(ShadowCursorRow.name) == shadow_store.NAME)
            .where(col(ShadowCursorRow.generation) == self.generation)
            .values(
                event_seq=self.event_seq,
                fired_through=self.fired_through,
                last_received=self.last_received,
                generation=self.generation + 1,
                errors=self.errors,
                rules_version=version,
                updated_at=now,
            )
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            raise CursorMoved("the shadow cursor was advanced by another writer")
        if rows:
            upsert = pg_insert if self.store.dialect == "postgresql" else sqlite_insert
            stmt = upsert(ShadowDecisionRow).on_conflict_do_nothing(index_elements=["key"])
            session.execute(stmt, rows)
        session.commit()
        self.generation += 1
        self.made = []
        return len(rows)
