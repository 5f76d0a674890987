"""Per-account state (ABM) and where a `World` keeps it: plain data, like `ProspectState`.

An account is a `groupId`. Its state holds what belongs to the account rather than to one
prospect: its traits (every member's `group` traits, merged), its members, its fit points,
whether it is an MQL, and its account triggers' counts. The members' scores are not copied
here: the account score is computed from the members' own states when it is needed, so
expiring points and merges never leave a stale copy behind (core.accounts).
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from leadrules.engine.core.state import FitEntry

# An account is `lead` until its score reaches the account MQL threshold, then `mql` while
# it stays at or above it (docs/rules.md, "Accounts").
AccountStage = Literal["lead", "mql"]


@dataclass(slots=True)
class AccountTriggerState:
    """An account trigger's matching events not used up, as (timestamp, prospect), sorted."""

    unused: list[tuple[int, str]] = field(default_factory=list)
    last_fired: int | None = None


@dataclass
class AccountState:
    id: str
    traits: dict[str, Any] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)  # canonical prospect ids, sorted
    fit: dict[str, FitEntry] = field(default_factory=dict)
    fit_points: int = 0
    stage: AccountStage = "lead"
    mqls: list[int] = field(default_factory=list)  # when it became an MQL, oldest first
    triggers: dict[str, AccountTriggerState] = field(default_factory=dict)
    last_at: int = 0

    def add_member(self, prospect: str) -> None:
        if prospect not in self.members:
            insort(self.members, prospect)

    def remove_member(self, prospect: str) -> None:
        if prospect in self.members:
            self.members.remove(prospect)


class AccountBook(Protocol):
    """The accounts a `World` keeps (`world.accounts`); a world without them runs the
    prospect rules only."""

    def get(self, account: str) -> AccountState | None: ...

    def create(self, account: str) -> AccountState: ...


class AccountStates(dict[str, AccountState]):
    """The in-memory `AccountBook` (replay, explain, tests)."""

    def create(self, account: str) -> AccountState:
        state = self[account] = AccountState(account)
        return state
