"""The duplicate filter is exact in both of its forms."""

from __future__ import annotations

import random

from leadrules.engine.replay.dedupe import SeenIds


def test_seen_ids_are_exact_before_and_after_compaction() -> None:
    seen = SeenIds(plain_limit=5_000)
    ids = [f"msg-{i}-{random.Random(i).random()}" for i in range(700_000)]
    assert all(seen.add(m) for m in ids)  # crosses the plain limit and several freezes
    assert len(seen) == len(ids)
    rng = random.Random(1)
    again = rng.sample(ids, 20_000)
    assert not any(seen.add(m) for m in again)
    fresh = [f"new-{i}" for i in range(20_000)]
    assert all(seen.add(m) for m in fresh)
    assert not any(seen.add(m) for m in fresh)
