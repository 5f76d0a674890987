"""The daemon's only ways in: `ingest` (store events durably), `process_pending` (evaluate
them), `tick` (fire due timers). Each evaluation commits in one transaction with its state,
timers and decisions, so a crash at any point loses nothing and writes nothing twice.
Evaluation goes through the one driver (`core.driver`), in the order received; an item
that raises is set aside (`quarantine`) and the rest goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import IO, Any

import orjson
from sqlalchemy import func, update
from sqlmodel import col, select

from leadrules.engine.clock import Clock
from leadrules.engine.core.driver import receipt_limits
from leadrules.engine.core.events import normalize
from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.core.state import Timer
from leadrules.engine.core.turn import Compiled
from leadrules.engine.daemon import event_log
from leadrules.engine.daemon.batch import Batch, OnDecisions, Poisoned
from leadrules.engine.daemon.event_log import IngestResult
from leadrules.engine.daemon.quarantine import Failure
from leadrules.engine.daemon.store import EventRow, Store, TimerRow

log = logging.getLogger("leadrules.daemon")

__all__ = ["IngestResult", "OnDecisions", "Service"]


_UNSET = -1


class Service:
    ingest_channel: str | None = None  # told of stored events (several workers: leases)

    def __init__(
        self, store: Store, rules: RuleSet, clock: Clock, *, matcher: str = "python"
    ) -> None:
        self.store = store
        self.clock = clock
        self.matcher = matcher
        self.compiled = Compiled.build(rules, matcher)
        self._lock = threading.Lock()  # one writer evaluates at a time
        # Ingest stamps receive times and commits under this lock, so receive times grow
        # with the log's order and a tick's `now` follows every event received before it.
        self._ingest_lock = threading.Lock()
        self._last_stamp = 0
        self._last_received: int | None = _UNSET  # of the last event evaluated
        self.held: dict[str, Failure] = {}  # items that raised, until recorded
        # The `now` of the last tick: every event received after it is stamped later, so a
        # shadow rule set may fire its timers through it (`daemon.shadow`).
        self.ticked_through: int | None = None
        self.on_decisions: OnDecisions | None = None
        self.on_set_aside: Callable[[str, str], None] | None = None  # (kind, status)
        # Refuse timestamps more than 7 days after receipt (`core.events.MAX_AHEAD_US`). The
        # daemon, on wall time, turns it on; a Service on a simulated clock that feeds a
        # history in at time 0 leaves it off.
        self.refuse_future = False

    @property
    def rules(self) -> RuleSet:
        return self.compiled.rules

    def swap_rules(self, rules: RuleSet) -> None:
        """Use a new rule set from the next evaluation on; prospect state is kept."""
        compiled = Compiled.build(rules, self.matcher)
        with self._lock:
            self.compiled = compiled

    # -- ingest --------------------------------------------------------------------------

    def ingest(self, messages: list[Any], received_at: int | None = None) -> IngestResult:
        """Validate and store messages. The valid ones are committed before this returns;
        invalid ones are reported by index and field. A known messageId is accepted once."""
        with self._ingest_lock:
            if received_at is None:
                received = self._last_stamp = max(self.clock.now_us(), self._last_stamp)
            else:
                received = received_at
            return event_log.store_events(
                self.store,
                messages,
                received,
                refuse_future=self.refuse_future,
                notify=self.ingest_channel,
            )

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
                size = min(batch, limit - done)
                with self.store.session() as session:
                    rows = session.exec(
                        select(EventRow)
                        .where(col(EventRow.status) == "pending")
                        .order_by(col(EventRow.seq))
                        .limit(size)
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
                    run = Batch(self, session, max(before for before, _, _ in items))
                    if not self._run_rows(session, run, [row.seq for row in rows], raws, items):
                        continue
                    run.commit()
                    last = max(row.received_at for row in rows)
                    if self._last_received is None or last > self._last_received:
                        self._last_received = last
                done += len(rows)
                if len(rows) < size:
                    break  # all that was pending is done: no query to find nothing more
        return done

    def _run_rows(
        self,
        session: Any,
        run: Batch,
        seqs: Sequence[int | None],
        raws: list[dict[str, Any]],
        items: list[Any],
    ) -> bool:
        """Evaluate a batch's events (their prospects and due timers read first) and mark
        their rows done, uncommitted. False, rolled back with the item that raised set
        aside, when one raises."""
        run.world.prefetch(
            str(raw[key])
            for raw in raws
            for key in ("userId", "anonymousId", "previousId")
            if raw.get(key)
        )
        run.world.prefetch(t.prospect for _, _, t in run.queue.heap)
        try:
            run.driver.run(items)
        except Poisoned as poisoned:
            self._set_aside(session, poisoned)
            return False
        session.execute(
            update(EventRow)
            .where(col(EventRow.seq).in_(seqs))
            .where(col(EventRow.message_id).not_in(list(self.held)))
            .values(status="done")
            # The rows are not used again: no need to match them in the session.
            .execution_options(synchronize_session=False)
        )
        return True

    def _begin_tick(self, now_us: int | None) -> int:
        """A tick's start: its time (now, unless given), marked as a new receipt, and every
        event received by then evaluated first, as the order of receipt demands."""
        with self._ingest_lock:
            now = self.clock.now_us() if now_us is None else now_us
            # What is received from now on is received after this tick: a new receipt, in
            # `receipt_limits`' terms, so a replay in received order fires what the tick
            # fires at the same place.
            self._last_stamp = max(self._last_stamp + 1, now + 1)
            self.ticked_through = now
        self.process_pending(limit=10**9)
        return now

    def _fire(self, session: Any, run: Batch, now: int) -> int | None:
        """Fire the batch's timers due by `now` (their prospects read first) and commit; how
        many fired, or None, rolled back with the timer that raised set aside."""
        run.world.prefetch(t.prospect for _, _, t in run.queue.heap)
        try:
            fired = run.driver.fire_through(now)
        except Poisoned as poisoned:
            self._set_aside(session, poisoned)
            return None
        run.commit()
        return fired

    def _set_aside(self, session: Any, poisoned: Poisoned) -> None:
        """Roll the batch back and hold the item that raised (quarantine): the next batch runs
        without it."""
        session.rollback()
        self.held[poisoned.key] = poisoned.failure
        log.error("set aside %s: %s", poisoned.key, poisoned.failure.error)

    def timers_due(self) -> bool:
        """Whether a stored timer is due by now: one indexed read, no lock. The work loop
        ticks after evaluating only then (the sweep ticks every second regardless)."""
        with self.store.session() as session:
            due = session.exec(
                select(col(TimerRow.seq))
                .where(col(TimerRow.due_at) <= self.clock.now_us())
                .limit(1)
            ).first()
        return due is not None

    def tick(self, now_us: int | None = None) -> int:
        """Fire every timer due at or before now (overdue ones keep their due time). The
        events received by then are evaluated first, as the order of receipt demands."""
        now = self._begin_tick(now_us)
        fired = 0
        with self._lock:
            while True:
                with self.store.session() as session:
                    run = Batch(self, session, now + 1)
                    if not run.queue.heap:
                        return fired
                    count = self._fire(session, run, now)
                    if count is None:
                        continue
                    fired += count

    # -- reading back ------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        return event_log.counts(self.store)

    def decisions(self) -> list[dict[str, Any]]:
        """Every decision record, in the order decided."""
        return event_log.decisions(self.store)

    def export(self, out: IO[bytes]) -> int:
        """The event log as Segment JSON Lines with `receivedAt` (`event_log.export`)."""
        return event_log.export(self.store, out)

    def pending_timers(self) -> list[Timer]:
        return event_log.pending_timers(self.store)
