"""The replay's `World` (replay, explain, tests): the core's in-memory world with the
duplicate filter of `replay --dedupe-window`."""

from __future__ import annotations

from leadrules.engine.core.memory_world import InMemoryWorld
from leadrules.engine.replay.dedupe import SeenIds


class MemoryWorld(InMemoryWorld):
    def __init__(self, dedupe_window: int | None = None) -> None:
        super().__init__()
        self.timers = self.queue.heap  # (due, seq, timer), a heap
        # the duplicate filter: ids within `dedupe_window` (µs; None: forever)
        self.seen_ids = SeenIds(dedupe_window)

    def seen(self, message_id: str) -> bool:
        return not self.seen_ids.add(message_id)
