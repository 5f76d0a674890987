"""The shadow rule set's `World`: its prospects, aliases and timers in memory, apart from
live's tables. (The replay's `MemoryWorld` is the same idea one layer over; the daemon does
not import the replay.) The event log's unique messageIds already dropped duplicates, as
for `DbWorld`, so `seen` remembers nothing."""

from __future__ import annotations

from leadrules.engine.core.account_state import AccountStates
from leadrules.engine.core.driver import TimerQueue
from leadrules.engine.core.state import ProspectState, Timer


class ShadowWorld:
    def __init__(self) -> None:
        self.states: dict[str, ProspectState] = {}
        self.aliases: dict[str, str] = {}
        self.accounts = AccountStates()  # used when the rules have accounts (core.accounts)
        self.queue = TimerQueue()

    def resolve(self, prospect: str) -> str:
        aliases = self.aliases
        seen = {prospect}
        while (target := aliases.get(prospect)) is not None and target not in seen:
            seen.add(target)
            prospect = target
        return prospect

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
