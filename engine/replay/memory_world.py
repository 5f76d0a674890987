"""An in-memory `World` for replay, explain and tests: dicts and a timer heap."""

from __future__ import annotations

import heapq

from leadrules.engine.core.state import ProspectState, Timer
from leadrules.engine.replay.dedupe import SeenIds


class MemoryWorld:
    def __init__(self) -> None:
        self.states: dict[str, ProspectState] = {}
        self.aliases: dict[str, str] = {}
        self.timers: list[tuple[int, int, Timer]] = []
        self._timer_seq = 0
        self._seen = SeenIds()

    def resolve(self, prospect: str) -> str:
        aliases = self.aliases
        if prospect not in aliases:
            return prospect
        root = prospect
        while root in aliases:
            root = aliases[root]
        while prospect != root:  # path compression keeps chains short
            aliases[prospect], prospect = root, aliases[prospect]
        return root

    def get(self, prospect: str) -> ProspectState | None:
        return self.states.get(prospect)

    def create(self, prospect: str) -> ProspectState:
        state = self.states[prospect] = ProspectState(prospect)
        return state

    def link(self, alias: str, canonical: str) -> None:
        self.aliases[alias] = canonical

    def drop(self, prospect: str) -> None:
        self.states.pop(prospect, None)

    def schedule(self, timer: Timer) -> None:
        self._timer_seq += 1
        heapq.heappush(self.timers, (timer.due, self._timer_seq, timer))

    def seen(self, message_id: str) -> bool:
        return not self._seen.add(message_id)

    def next_due(self) -> int | None:
        return self.timers[0][0] if self.timers else None

    def pop_timer(self) -> Timer:
        return heapq.heappop(self.timers)[2]
