"""The outbox shared by several daemons on one PostgreSQL (docs/scale.md, "Several
workers"): a worker claims a group of due messages with `FOR UPDATE SKIP LOCKED`, delivers
them while its transaction holds their rows, and records the outcomes in that transaction.
Another worker skips rows held this way, so no message is sent by two workers at once; a
worker killed mid-group loses its transaction, the rows come free unchanged, and another
worker delivers them again under the same idempotency keys (at least once, as with one
daemon killed mid-group).
"""

from __future__ import annotations

from sqlmodel import col, select

from leadrules.engine.daemon.dispatch import RECORD_EVERY, Dispatcher
from leadrules.engine.daemon.store import DecisionRow


class ClaimingDispatcher(Dispatcher):
    def drain(self, limit: int = 100) -> int:
        """Deliver due messages no other worker holds; the number attempted."""
        now = self.clock.now_us()
        done = 0
        while done < limit:
            size = min(RECORD_EVERY, limit - done)
            with self.store.session() as session:
                rows = session.exec(
                    select(DecisionRow)
                    .where(
                        col(DecisionRow.status) == "pending",
                        col(DecisionRow.next_attempt_at) <= now,
                    )
                    .order_by(col(DecisionRow.seq))
                    .limit(size)
                    .with_for_update(skip_locked=True)
                ).all()
                if not rows:
                    break
                session.expunge_all()  # the outcomes are written by `_record` alone
                outcomes = [self._send(row) for row in rows]
                self._record(outcomes, session)
                session.commit()
            for outcome in outcomes:
                self._report(outcome)
            done += len(rows)
            if len(rows) < size:
                break  # none left due (or all held by others): no claim to find nothing
        return done
