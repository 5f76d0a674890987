"""An in-memory `World` for replay, explain and tests: dicts and the driver's timer queue."""

from __future__ import annotations

from leadrules.engine.core.account_state import AccountStates
from leadrules.engine.core.driver import TimerQueue
from leadrules.engine.core.state import ProspectState, Timer
from leadrules.engine.replay.dedupe import SeenIds


class MemoryWorld:
    def __init__(self, dedupe_window: int | None = None) -> None:
        self.states: dict[str, ProspectState] = {}
        self.aliases: dict[str, str] = {}
        self.accounts = AccountStates()  # used when the rules have accounts (core.accounts)
        self.queue = TimerQueue()
        self.timers = self.queue.heap  # (due, seq, timer), a heap
        # the duplicate filter: ids within `dedupe_window` (µs; None: forever)
        self.seen_ids = SeenIds(dedupe_window)

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
        self.queue.push(timer)

    def seen(self, message_id: str) -> bool:
        return not self.seen_ids.add(message_id)
