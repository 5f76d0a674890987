"""Contract "Events (input)": a second message with the same `messageId` is ignored, however
far apart. The duplicate filter must stay exact through every stage of its memory saving
(plain strings, recent hashes, frozen levels merged like a binary counter, the Bloom filter
rebuilt as it fills); small sizes take a few thousand ids through all of them."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from leadrules.engine.replay.dedupe import SeenIds
from tests.scenario import at, page, pick, run, track


def _ids(prefix: str, n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"{prefix}-{i}-{rng.getrandbits(40):x}" for i in range(n)]


@pytest.mark.parametrize(
    ("plain_limit", "recent_limit", "bloom_bytes"),
    [
        (1, 1, 1),  # every id frozen at once; the Bloom filter rebuilt again and again
        (50, 16, 8),
        (100, 64, 64),
        (30, 7, 1 << 12),  # a sparse filter: a wrong bit shows as a missed duplicate
        (1000, 100, 1 << 20),
    ],
)
def test_dedupe_a_second_message_with_the_same_id_is_ignored_in_every_stage(
    plain_limit: int, recent_limit: int, bloom_bytes: int
) -> None:
    seen = SeenIds(plain_limit, recent_limit=recent_limit, bloom_bytes=bloom_bytes)
    ids = _ids("m", 3_000, seed=plain_limit)
    for count, message_id in enumerate(ids, start=1):
        assert seen.add(message_id) is True
        assert seen.add(message_id) is False  # at once, whatever stage it landed in
        assert len(seen) == count
    # and later, after it moved on through freezes and merges
    assert [m for m in ids if seen.add(m)] == []
    fresh = _ids("n", 3_000, seed=plain_limit + 1)
    assert [m for m in fresh if not seen.add(m)] == []
    assert [m for m in fresh + ids if seen.add(m)] == []
    assert len(seen) == len(ids) + len(fresh)


def test_dedupe_ids_are_exact_text_not_similar_text() -> None:
    seen = SeenIds(2, recent_limit=2, bloom_bytes=16)
    for message_id in ["a", "A", "a ", "1", "01", "", "ä"]:
        assert seen.add(message_id) is True
    assert [seen.add(m) for m in ["a", "A", "a ", "1", "01", "", "ä", "b"]] == [
        False,
        False,
        False,
        False,
        False,
        False,
        False,
        True,
    ]


def test_dedupe_default_sizes_keep_strings_until_the_plain_limit() -> None:
    seen = SeenIds()
    ids = _ids("d", 2_000, seed=7)
    assert all(seen.add(m) for m in ids)
    assert not any(seen.add(m) for m in ids)
    assert len(seen) == 2_000


def test_dedupe_a_replay_ignores_a_repeated_message_id_far_apart(tmp_path: Path) -> None:
    rules = """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 10}
    triggers:
      - {id: ping, when: {event: Ping}, then: [{notify: {channel: log, template: x}}]}
    """
    first = page("u1", at(0), "/a")
    again = {**first, "timestamp": at(200)}  # the same messageId, 200 days later
    other = page("u1", at(201), "/b")
    events = [first, again, other, track("u1", at(202), "Ping")]
    assert pick(run(tmp_path, rules, events), "rule", "score") == [("ping", 20)]
