"""The duplicate filter (engine/replay/dedupe.py): exact within its window in every stage of
its memory saving (the dict of recent ids, frozen chunks, the Bloom filter in front of them),
ids forgotten once the replay's time is past the window, memory bounded by the window."""

from __future__ import annotations

import random
from array import array

import pytest

from leadrules.engine.replay.dedupe import SeenIds, parse_window
from leadrules.engine.timefmt import US_PER_S

DAY = 86_400 * US_PER_S


def _ids(prefix: str, n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"{prefix}-{i}-{rng.getrandbits(40):x}" for i in range(n)]


def _check_bloom(seen: SeenIds) -> None:
    """Every frozen id is marked (no false negative is possible), and the count of marked ids
    is bounded by twice those held (stale marks are cleared by a rebuild)."""
    bloom, mask = seen._bloom, seen._mask
    held = seen._frozen()
    for chunk in seen._chunks:
        for h in chunk.hashes:
            a, b = h & mask, (h >> 32) & mask
            assert (bloom[a >> 3] >> (a & 7)) & 1 and (bloom[b >> 3] >> (b & 7)) & 1
    assert held <= seen._marked <= 2 * held
    if seen.window is None:
        assert seen._marked == held  # nothing is ever dropped
    assert len(bloom) * 8 >= held * 16


@pytest.mark.parametrize(
    ("window", "recent_limit", "bloom_bytes"),
    [
        (None, 1, 1),  # every id frozen at once; the filter full, every lookup searched
        (None, 16, 8),
        (None, 7, 1 << 12),  # a sparse filter: a mark in the wrong place shows as a miss
        (10**12, 64, 64),
        (10**12, 100, 1 << 16),
    ],
)
def test_dedupe_exact_in_every_stage(
    window: int | None, recent_limit: int, bloom_bytes: int
) -> None:
    seen = SeenIds(window, recent_limit=recent_limit, bloom_bytes=bloom_bytes)
    ids = _ids("m", 2_000, seed=recent_limit)
    for count, message_id in enumerate(ids, start=1):
        assert seen.add(message_id) is True
        assert seen.add(message_id) is False  # at once, whatever stage it landed in
        assert len(seen) == count
    _check_bloom(seen)
    assert [m for m in ids if seen.add(m)] == []  # and later, after freezes and rebuilds
    fresh = _ids("n", 2_000, seed=recent_limit + 1)
    assert [m for m in fresh if not seen.add(m)] == []
    assert [m for m in fresh + ids if seen.add(m)] == []
    assert len(seen) == len(ids) + len(fresh)
    _check_bloom(seen)


def test_dedupe_ids_are_exact_text_not_similar_text() -> None:
    seen = SeenIds(None, recent_limit=2, bloom_bytes=1)
    for message_id in ["a", "A", "a ", "1", "01", "", "ä"]:
        assert seen.add(message_id) is True
    again = [seen.add(m) for m in ["a", "A", "a ", "1", "01", "", "ä", "b"]]
    assert again == [False] * 7 + [True]


def test_dedupe_default_keeps_every_id_and_has_no_window() -> None:
    seen = SeenIds()
    assert seen.window is None
    ids = _ids("d", 3_000, seed=7)
    assert all(seen.add(m) for m in ids)
    seen.advance(100 * 365 * DAY)  # a century later, still a duplicate
    assert not any(seen.add(m) for m in ids)
    assert len(seen) == 3_000


@pytest.mark.parametrize("recent_limit", [1_000, 2, 1])  # held recent, frozen, frozen at once
def test_dedupe_window_boundary(recent_limit: int) -> None:
    """A repeat at most `window` after the accepted copy is a duplicate; one later is new,
    and is then remembered from its own timestamp."""
    window = 10 * DAY
    seen = SeenIds(window=window, recent_limit=recent_limit, bloom_bytes=1)
    seen.advance(5 * DAY)
    assert seen.add("a") is True
    assert seen.add("other") is True  # (freezes "a" with a limit of 2)
    seen.advance(15 * DAY)  # exactly the window after
    assert seen.add("a") is False
    seen.advance(15 * DAY + 1)  # one microsecond past it: accepted as new
    assert seen.add("a") is True
    assert seen.add("a") is False  # remembered again, from 15 days + 1 µs
    seen.advance(25 * DAY + 1)
    assert seen.add("a") is False
    seen.advance(25 * DAY + 2)
    assert seen.add("a") is True
    assert seen.add("other") is True  # its copy at 5 days is long past the window


def test_dedupe_window_is_measured_from_the_latest_timestamp_read() -> None:
    """A late message keeps its own timestamp; the window ends at the latest one read."""
    window = 10 * DAY
    seen = SeenIds(window, recent_limit=1_000)
    seen.advance(100 * DAY)
    assert seen.add("x") is True
    seen.advance(95 * DAY)  # a late message: remembered from 95 days ...
    assert seen.add("late") is True
    assert seen.add("x") is False  # ... while the replay's time stays at 100 days
    seen.advance(91 * DAY)
    assert seen.add("late") is False
    seen.advance(105 * DAY)
    assert seen.add("late") is False  # 95 >= 105 - 10
    seen.advance(89 * DAY)  # older than the window before the latest time (105 - 10 = 95)
    assert seen.add("old") is True
    assert seen.add("old") is True  # past the window as soon as it is read: never held
    seen.advance(105 * DAY + 1)
    assert seen.add("late") is True
    assert seen.add("x") is False


def test_dedupe_newest_copy_decides() -> None:
    """An id accepted again after its window holds its newest copy's time, in every stage."""
    window = 10
    seen = SeenIds(window, recent_limit=3, bloom_bytes=1)
    seen.advance(0)
    assert seen.add("a") is True
    seen.advance(20)
    assert [seen.add(m) for m in ("b", "c", "a", "d", "e")] == [True] * 5  # "a" again
    assert seen._recent == {}  # everything frozen: "a" in two chunks, at 0 and at 20
    seen.advance(30)
    assert seen.add("a") is False  # the copy at 20 counts, not the one at 0


def test_dedupe_an_id_in_recent_is_found_while_chunks_exist() -> None:
    seen = SeenIds(None, recent_limit=2, bloom_bytes=1)
    assert seen.add("a") and seen.add("b")  # frozen
    assert seen.add("c") is True  # held in the dict
    assert seen._chunks and seen._recent
    assert seen.add("c") is False
    assert seen.add("a") is False


def test_dedupe_every_recent_limit_ids_are_frozen_into_one_chunk() -> None:
    seen = SeenIds(None, recent_limit=4, bloom_bytes=1)
    for i in range(11):
        seen.add(f"id-{i}")
    assert [len(c.hashes) for c in seen._chunks] == [4, 4]
    assert len(seen._recent) == 3
    for chunk in seen._chunks:
        assert list(chunk.hashes) == sorted(chunk.hashes)


def test_dedupe_chunks_past_the_window_are_dropped() -> None:
    """Memory follows the window: a chunk goes once its newest id is past the window (a
    chunk whose newest id is exactly at the window's start stays)."""
    window = 10
    seen = SeenIds(window, recent_limit=2, bloom_bytes=1)
    seen.advance(0)
    seen.add("a")
    seen.advance(5)
    seen.add("b")  # frozen: newest 5
    seen.advance(15)
    seen.add("c")
    seen.add("d")  # frozen at 15: 5 >= 15 - 10, the first chunk stays
    assert len(seen._chunks) == 2
    assert seen.add("b") is False  # at 5: still within the window
    assert seen.add("a") is True  # at 0: past it (and now held again, at 15)
    seen.advance(16)
    seen.add("e")  # frozen at 16 with "a": the first chunk (newest 5) is dropped
    assert [len(c.hashes) for c in seen._chunks] == [2, 2]
    assert len(seen) == 4
    assert seen.add("b") is True


def test_dedupe_memory_is_bounded_by_the_window() -> None:
    window = 100
    seen = SeenIds(window, recent_limit=16, bloom_bytes=1)
    largest = 0
    for t in range(20_000):  # one id per microsecond: 100 ids in a window
        seen.advance(t)
        assert seen.add(f"id-{t}") is True
        largest = max(largest, len(seen))
        if t % 997 == 0:
            _check_bloom(seen)
    # the window's 100 ids, the dict, and one chunk partly past the window
    assert largest <= 100 + 16 + 16
    assert len(seen._bloom) <= 1 << 10
    seen.advance(20_000)
    assert [seen.add(f"id-{t}") for t in (19_899, 19_900, 19_999)] == [True, False, False]


def test_dedupe_bloom_filter_grows_with_the_ids_held() -> None:
    seen = SeenIds(None, recent_limit=64, bloom_bytes=1)
    sizes = []
    for i in range(5_000):
        seen.add(f"g-{i}")
        if i % 64 == 63:
            _check_bloom(seen)
            sizes.append(len(seen._bloom))
    assert sizes == sorted(sizes)  # it only grows while nothing is dropped
    # sized for twice the ids held at its last rebuild: at most 4x what it must hold now
    assert len(seen._bloom) * 8 <= 4 * 5_000 * 16
    assert len(seen._bloom) & (len(seen._bloom) - 1) == 0  # a power of two: a mask


def test_dedupe_parse_window() -> None:
    assert parse_window("all") is None
    assert parse_window("7d") == 7 * DAY
    assert parse_window("24h") == DAY
    for bad in ("", "7", "0d", "forever", "ALL"):
        with pytest.raises(ValueError):
            parse_window(bad)


def test_dedupe_default_sizes_a_chunk_every_524288_ids_and_a_bloom_filter_to_match() -> None:
    """The sizes docs/scale.md quotes: ids wait in the dict in batches of 524,288; the Bloom
    filter gets 16 bits per id held, doubled when it is rebuilt (a power of two)."""
    seen = SeenIds()
    ids = _ids("z", 1_100_000, seed=3)
    assert all(seen.add(m) for m in ids)
    assert [len(c.hashes) for c in seen._chunks] == [524_288, 524_288]
    assert len(seen._recent) == 1_100_000 - 1_048_576
    # rebuilt at the first chunk for twice its ids (524,288 x 16 bits x 2: 2 MiB), which
    # the second chunk fills exactly
    assert len(seen._bloom) == 1 << 21
    _check_bloom(seen)
    assert not any(seen.add(m) for m in ids[::7])


def test_dedupe_before_any_timestamp_the_time_is_zero() -> None:
    seen = SeenIds(10, recent_limit=1_000)
    assert seen.add("a") is True  # at 0
    seen.advance(10)
    assert seen.add("a") is False
    seen.advance(11)
    assert seen.add("a") is True


def test_dedupe_a_window_of_zero_still_ignores_a_repeat_at_the_same_instant() -> None:
    seen = SeenIds(0, recent_limit=1_000)
    assert seen.add("a") is True
    assert seen.add("a") is False
    seen.advance(1)
    assert seen.add("a") is True


@pytest.mark.parametrize("recent_limit", [1_000, 1])
def test_dedupe_held_gives_the_time_of_the_copy_held(recent_limit: int) -> None:
    """`held` is `add` that also says when the copy held came (the partition pass of
    `--workers` gives sender numbers as times and reads back a message's first sender)."""
    seen = SeenIds(None, recent_limit=recent_limit, bloom_bytes=1)
    seen.advance(7)
    assert seen.held(hash("a")) is None
    seen.advance(9)
    assert seen.held(hash("b")) is None
    assert seen.held(hash("a")) == 7
    assert seen.held(hash("b")) == 9
    assert seen.add("a") is False


@pytest.mark.parametrize("recent_limit", [1_000, 3, 1])  # the dict alone, chunks, both paths
def test_dedupe_hold_all_joins_another_table_and_names_each_clash(recent_limit: int) -> None:
    """The partition pass's join: another scanner's (hash, first sender) pairs held at once;
    an id held before at another time is a clash (its two senders are joined)."""
    seen = SeenIds(None, recent_limit=recent_limit, bloom_bytes=1)
    for sender, message in [(1, "a"), (2, "b"), (1, "c")]:
        seen.advance(sender)
        assert seen.held(hash(message)) is None
    theirs = array("q", [hash(m) for m in ("b", "d", "c", "e")])
    clashes = seen.hold_all(theirs, [2, 5, 6, 7])
    assert clashes == [(6, 1)]  # "b" came from 2 here too: no clash; "c": 6 and 1
    for message, sender in [("a", 1), ("b", 2), ("c", 1), ("d", 5), ("e", 7)]:
        assert seen.held(hash(message)) == sender
    hashes, stamps = seen.table()
    assert sorted(zip(hashes, stamps, strict=True)) == sorted(
        (hash(m), s) for m, s in [("a", 1), ("b", 2), ("c", 1), ("d", 5), ("e", 7)]
    )


def test_dedupe_hold_all_within_a_window_holds_each_at_its_time() -> None:
    seen = SeenIds(10, recent_limit=1_000)
    seen.advance(100)
    assert seen.add("a") is True
    assert seen.hold_all(array("q", [hash("a"), hash("z")]), [105, 120]) == [(105, 100)]
    seen.advance(125)
    assert seen.add("a") is True  # 100 is past the window at 125
    assert seen.add("z") is False  # held at 120


@pytest.mark.parametrize("recent_limit", [1_000, 1])
def test_dedupe_hold_all_without_holding_only_names_the_clashes(recent_limit: int) -> None:
    """The last table the partition pass joins: looked up, not held."""
    seen = SeenIds(None, recent_limit=recent_limit, bloom_bytes=1)
    for sender, message in [(1, "a"), (2, "b")]:
        seen.advance(sender)
        assert seen.held(hash(message)) is None
    theirs = array("q", [hash(m) for m in ("a", "b", "z")])
    assert seen.hold_all(theirs, [1, 9, 4], hold=False) == [(9, 2)]
    hashes, _ = seen.table()
    assert sorted(hashes) == sorted(hash(m) for m in ("a", "b"))  # "z" was not held
