"""Evaluation by one of several daemons sharing a PostgreSQL database: the events and timers
of the partitions this worker holds (`daemon.leases`), in the order one daemon would
evaluate them (docs/scale.md, "Several workers").

The same `Service` (ingest is unchanged: every worker stores what it receives), with
`process_pending` and `tick` restricted to the held partitions. Each pass locks the held
partitions' rows, reads their pending events in the order received and evaluates those that
may go now (`partitions.plan`) in one `Batch` with the timers of those partitions. An
`identify` or `alias` that links a prospect of another worker's partition stops the held
partitions it touches; the next pass takes that partition's lock too and evaluates, in
order, its events before the merge, the merge, and what follows in both.
"""

from __future__ import annotations

import logging

import orjson
from sqlmodel import Session

from leadrules.engine.clock import Clock
from leadrules.engine.core.driver import receipt_limits
from leadrules.engine.core.events import normalize
from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.daemon import partitions
from leadrules.engine.daemon.batch import Batch
from leadrules.engine.daemon.leases import INGEST_CHANNEL, Leases
from leadrules.engine.daemon.partitions import Pending
from leadrules.engine.daemon.service import Service
from leadrules.engine.daemon.store import Store

log = logging.getLogger("leadrules.daemon")


class PartitionedService(Service):
    ingest_channel = INGEST_CHANNEL  # the other workers wake at once for their partitions

    def __init__(
        self, store: Store, rules: RuleSet, clock: Clock, leases: Leases, *, matcher: str = "python"
    ) -> None:
        super().__init__(store, rules, clock, matcher=matcher)
        self.leases = leases
        self._poisoned = False  # the last pass set an item aside: run it again without
        self._emptied = False  # the last pass evaluated every pending event it could see
        with store.session() as session:
            partitions.ensure(session)

    def process_pending(self, limit: int = 100_000, batch: int = 500) -> int:
        """Evaluate the pending events of the held partitions, as `Service.process_pending`
        does for all: in the order received, up to `batch` per transaction."""
        done = 0
        with self._lock:
            while done < limit:
                held = self.leases.held()
                if not held:
                    break
                self._poisoned = False
                parts = held
                evaluated, cross = self._pass(parts, min(batch, limit - done))
                # An identify or alias that also touches a partition held elsewhere stops
                # the held partitions it shares: take that partition's lock too (with its
                # earlier events, if any), until something can be evaluated.
                while cross is not None and evaluated == 0 and not self._poisoned:
                    parts = parts | cross.parts
                    evaluated, cross = self._pass(parts, min(batch, limit - done))
                done += evaluated
                if self._poisoned:
                    continue  # the same events again, without the one set aside
                if evaluated == 0 or (self._emptied and cross is None):
                    break  # nothing more (known without a pass that finds nothing)
        return done

    def _pass(self, parts: frozenset[int], limit: int) -> tuple[int, Pending | None]:
        """One transaction over `parts`: (events evaluated, the first event that touches a
        partition outside them)."""
        with self.store.session() as session:
            last = partitions.lock(session, parts)
            rows = partitions.pending(session, parts, limit)
            chosen, cross = partitions.plan(rows, parts)
            self._emptied = len(rows) < limit and len(chosen) == len(rows)
            if not chosen:
                session.rollback()
                return 0, cross
            return self._evaluate(session, parts, chosen, last), cross

    def _evaluate(
        self, session: Session, parts: frozenset[int], rows: list[Pending], last: int | None
    ) -> int:
        """Evaluate `rows` (pending events of `parts`, in order) and commit; 0 when one of
        them raised (it is held, and the next pass runs without it)."""
        raws = [orjson.loads(row.raw) for row in rows]
        items = list(
            receipt_limits(
                (
                    (row.ts, row.received_at, normalize(raw))
                    for row, raw in zip(rows, raws, strict=True)
                ),
                last,
            )
        )
        run = Batch(
            self, session, max(before for before, _, _ in items), partitions.timers_of(parts)
        )
        links: list[tuple[str, str]] = []
        run.world.on_link = lambda alias, canonical: links.append((alias, canonical))
        if not self._run_rows(session, run, [row.seq for row in rows], raws, items):
            self._poisoned = True
            return 0
        partitions.record_links(session, links)
        partitions.advance(session, parts, max(row.received_at for row in rows))
        run.commit()
        return len(rows)

    def tick(self, now_us: int | None = None) -> int:
        """Fire the held partitions' timers due at or before now, after their events. A
        partition with an event still pending (waiting on another partition) is left for
        the next tick, so its timers never overtake its events."""
        now = self._begin_tick(now_us)
        fired = 0
        with self._lock:
            while True:
                held = self.leases.held()
                if not held:
                    return fired
                with self.store.session() as session:
                    partitions.lock(session, held)
                    busy = {
                        p for row in partitions.pending(session, held, 10_000) for p in row.parts
                    }
                    free = held - busy
                    if not free:
                        return fired
                    run = Batch(self, session, now + 1, partitions.timers_of(frozenset(free)))
                    if not run.queue.heap:
                        return fired
                    count = self._fire(session, run, now)
                    if count is None:
                        continue
                    fired += count
