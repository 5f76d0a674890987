"""Which pending events a worker may evaluate in one pass (`partitions.plan`), and the
partition function being the same in Python and in PostgreSQL."""

from __future__ import annotations

import os

import pytest

from leadrules.engine.daemon.partitions import _PART, PARTITIONS, Pending, partition_of, plan


def event(seq: int, *parts: int) -> Pending:
    return Pending(seq, f"m{seq}", seq, seq, "{}", frozenset(parts))


def seqs(rows: list[Pending]) -> list[int]:
    return [row.seq for row in rows]


def test_every_event_of_held_partitions_in_order() -> None:
    rows = [event(1, 0), event(2, 1), event(3, 0, 1), event(4, 1)]
    chosen, cross = plan(rows, frozenset({0, 1}))
    assert seqs(chosen) == [1, 2, 3, 4] and cross is None


def test_a_merge_with_a_foreign_partition_stops_what_shares_a_partition_with_it() -> None:
    rows = [event(1, 0), event(2, 0, 5), event(3, 0), event(4, 1), event(5, 5)]
    chosen, cross = plan(rows, frozenset({0, 1}))
    assert seqs(chosen) == [1, 4]  # 3 waits behind the merge; 5 is not held
    assert cross is not None and cross.seq == 2


def test_an_event_behind_a_waiting_one_waits_with_all_its_partitions() -> None:
    # 3 waits behind 2 (partition 0) and touches 1, so 4 (partition 1) waits too.
    rows = [event(1, 1), event(2, 0, 7), event(3, 0, 1), event(4, 1)]
    chosen, cross = plan(rows, frozenset({0, 1}))
    assert seqs(chosen) == [1]
    assert cross is not None and cross.seq == 2


def test_a_merge_chosen_joins_its_partitions_for_the_events_read_before_it_ran() -> None:
    # 1 merges an id of partition 3 into a prospect of partition 2; 4 is that id's next
    # event, read as partition 3 before the merge ran. When 2 waits (3 touches 9, held
    # elsewhere), 4 must wait too, or it would overtake the prospect's event 3.
    rows = [event(1, 2, 3), event(2, 2, 9), event(3, 2), event(4, 3)]
    chosen, cross = plan(rows, frozenset({2, 3}))
    assert seqs(chosen) == [1]
    assert cross is not None and cross.seq == 2


def test_the_partition_function_spreads_ids() -> None:
    counts = [0] * PARTITIONS
    for n in range(3200):
        counts[partition_of(f"user-{n}")] += 1
    assert min(counts) > 50 and max(counts) < 160


@pytest.mark.postgres
def test_python_and_postgresql_put_an_id_in_the_same_partition() -> None:
    url = os.environ.get("LEADRULES_TEST_POSTGRES_URL")
    if url is None:
        pytest.skip("needs PostgreSQL: set LEADRULES_TEST_POSTGRES_URL")
    import psycopg

    ids = [f"user-{n}" for n in range(200)] + ["", "é-ü-名前", "a" * 256, "anon 1/2"]
    with psycopg.connect(url) as conn:
        found = [
            conn.execute(
                "SELECT " + _PART.format("%s::text").replace("% ", "%% "), (i,)
            ).fetchone()[0]
            for i in ids
        ]
    assert found == [partition_of(i) for i in ids]
