"""The dispatcher records delivery outcomes per group of sends, in one transaction each
(`dispatch.RECORD_EVERY`), not one commit per message: every outcome lands on its own row,
and a row changed while its message was out is not overwritten."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from sqlalchemy import delete, event
from sqlmodel import col

from leadrules.engine.daemon import dispatch
from leadrules.engine.daemon.dispatch import Dispatcher, Outcome, outbox
from leadrules.engine.daemon.store import DecisionRow, Store
from tests.adapters.test_faults import dispatcher, seeded
from tests.receivers import HttpReceiver

pytestmark = pytest.mark.integration


def commits_of(store: Store) -> Counter[str]:
    seen: Counter[str] = Counter()
    event.listen(store.engine, "commit", lambda conn: seen.update(["commit"]))
    return seen


def test_outcomes_are_committed_per_group_each_on_its_own_row(
    store: Store, http: HttpReceiver
) -> None:
    clock, rules, keys = seeded(store, prospects=dispatch.RECORD_EVERY + 7)
    answers = [200, 500, 404]  # sent, retried later, dead at once
    http.statuses = [answers[i % 3] for i in range(len(keys))]
    sender = dispatcher(store, clock, rules, http.url)
    commits = commits_of(store)
    assert sender.drain(limit=1000) == len(keys)
    assert commits["commit"] == math.ceil(len(keys) / dispatch.RECORD_EVERY)
    answered = {r.headers["idempotency-key"]: answers[i % 3] for i, r in enumerate(http.requests)}
    assert sorted(answered) == keys
    rows = {r.key: r for r in outbox(store, limit=1000) if r.key in answered}
    for key, status in answered.items():
        row = rows[key]
        assert row.attempts == 1
        if status == 200:
            assert (row.status, row.sent_at, row.last_error) == ("sent", clock.now_us(), None)
        elif status == 500:
            assert row.status == "pending" and "HTTP 500" in (row.last_error or "")
            assert row.next_attempt_at >= clock.now_us() and row.sent_at is None
        else:
            assert row.status == "dead" and "HTTP 404" in (row.last_error or "")


class Forgetting(Dispatcher):
    """Deletes the first message's row while that message is out (as `forget` may), and
    marks the second as dropped."""

    def _send(self, row: DecisionRow) -> Outcome:
        outcome = super()._send(row)
        with self.store.session() as session:
            if not hasattr(self, "seen"):
                self.seen = row.seq
                session.execute(delete(DecisionRow).where(col(DecisionRow.seq) == row.seq))
            elif self.seen is not None:
                self.seen = None
                current = session.get(DecisionRow, row.seq)
                assert current is not None
                current.status = "dropped"
                session.add(current)
            session.commit()
        return outcome


def test_a_row_changed_while_its_message_was_out_is_left_as_it_is(
    store: Store, http: HttpReceiver
) -> None:
    clock, rules, keys = seeded(store, prospects=3)
    plain = dispatcher(store, clock, rules, http.url)
    sender = Forgetting(store, plain.rules, plain.templates, clock)
    assert sender.drain() == len(keys)
    statuses = sorted(r.status for r in outbox(store, limit=1000) if r.key in keys)
    assert statuses == ["dropped"] + ["sent"] * (len(keys) - 2)  # the deleted one stays gone
