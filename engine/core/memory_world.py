"""A `World` held in memory: prospects, aliases, accounts and the driver's timer queue in
dicts. The replay's world adds its duplicate filter; the daemon's shadow uses it as it is
(its event log's unique messageIds already dropped duplicates, so `seen` remembers nothing).
"""

from __future__ import annotations

from leadrules.engine.core.account_state import AccountStates
from leadrules.engine.core.driver import TimerQueue
from leadrules.engine.core.state import ProspectState, Timer


class InMemoryWorld:
    def __init__(self) -> None:
        self.states: dict[str, ProspectState] = {}
        self.aliases: dict[str, str] = {}
        self.accounts = AccountStates()  # used when the rules have accounts (core.accounts)
        self.queue = TimerQueue()

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
        return False
