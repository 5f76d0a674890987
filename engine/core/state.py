"""Per-prospect state, timers and decisions: the data the state machines work on.

A `ProspectState` is plain data. In a replay it lives in memory; in the daemon it is stored
as one document per prospect and loaded for each unit of work (see `engine.store`).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from leadrules.engine.core.ruleset import Stage

RECENT_EVENTS = 10

# Whether a ledger entry still counts: `expired` by time, `cleared` by a reset on reject.
LedgerState = Literal["active", "expired", "cleared"]
LEDGER_STATES: tuple[LedgerState, ...] = get_args(LedgerState)
# What a timer does when due: a sequence step, the SLA, an `unless` absence check, the next
# expiry of behaviour points.
TimerKind = Literal["step", "sla", "absence", "expiry"]
TIMER_KINDS: tuple[TimerKind, ...] = get_args(TimerKind)


@dataclass(slots=True)
class LedgerEntry:
    """Points one behaviour rule gave for one event: a reason behind the score."""

    rule: str
    points: int
    at: int
    expires: int | None
    event: dict[str, Any]  # a short description of the event (see `describe_event`)
    seq: int = 0
    state: LedgerState = "active"


@dataclass(slots=True)
class FitEntry:
    rule: str
    points: int
    since: int  # when the traits started to satisfy the rule
    event: dict[str, Any]


@dataclass(slots=True)
class Enrolment:
    sequence: str
    token: str
    started: int
    origin: str  # the message or timer that enrolled the prospect
    next_step: int = 0  # 0-based index of the next step to run


@dataclass(slots=True)
class TriggerState:
    unused: list[int] = field(default_factory=list)  # times of matching events not used up
    last_fired: int | None = None
    absences: dict[str, int] = field(default_factory=dict)  # token -> t0 of a pending unless


@dataclass(slots=True)
class StageChange:
    at: int
    stage: Stage
    rule: str
    reason: str | None = None


@dataclass
class ProspectState:
    id: str
    traits: dict[str, Any] = field(default_factory=dict)
    trait_at: dict[str, int] = field(default_factory=dict)  # when each trait was last set
    stage: Stage = "lead"
    history: list[StageChange] = field(default_factory=list)
    reject_reason: str | None = None
    unsubscribed: bool = False
    # Behaviour points: every entry for reasons and explain; a heap of the expiring ones.
    ledger: list[LedgerEntry] = field(default_factory=list)
    expiring: list[tuple[int, int, LedgerEntry]] = field(default_factory=list)
    behaviour_points: int = 0
    fit: dict[str, FitEntry] = field(default_factory=dict)
    fit_points: int = 0
    awards: dict[str, list[int]] = field(default_factory=dict)  # rule -> award times (limits)
    triggers: dict[str, TriggerState] = field(default_factory=dict)
    enrolments: dict[str, Enrolment] = field(default_factory=dict)
    sla_token: str | None = None
    expiry_check: tuple[int, str] | None = None  # (due, token) of the pending expiry timer
    negative_expiries: list[int] = field(default_factory=list)  # heap: when negative points expire
    inactive: int = 0  # ledger entries that no longer count (compaction trigger)
    recent: list[dict[str, Any]] = field(default_factory=list)  # newest last
    aliases: list[str] = field(default_factory=list)  # ids merged into this one
    sends: dict[str, list[int]] = field(default_factory=dict)  # channel -> send times (caps)
    account: str | None = None  # groupId of the latest `group` (core.accounts)
    account_traits: dict[str, Any] = field(default_factory=dict)
    counter: int = 0
    last_at: int = 0

    def new_token(self) -> str:
        """A token unique across prospects, even after merges (it carries the id)."""
        self.counter += 1
        return f"{self.id}#{self.counter}"

    def expire(self, now: int, *, before: bool = False) -> None:
        """Drop behaviour points that no longer count at `now` (those with expiry <= now;
        with `before`, only those with expiry < now)."""
        heap = self.expiring
        while heap and (heap[0][0] < now or (not before and heap[0][0] == now)):
            _, _, entry = heapq.heappop(heap)
            if entry.state == "active":
                entry.state = "expired"
                self.behaviour_points -= entry.points
                self.inactive += 1

    def points_by_rule(self) -> dict[str, int]:
        """Each rule's share of the current score: its fit points and active behaviour
        points (as of the last expiry check)."""
        points: dict[str, int] = {}
        for fit in self.fit.values():
            points[fit.rule] = points.get(fit.rule, 0) + fit.points
        for entry in self.ledger:
            if entry.state == "active":
                points[entry.rule] = points.get(entry.rule, 0) + entry.points
        return points

    def score(self, now: int) -> int:
        """The score at `now`: fit points plus behaviour points not yet expired."""
        self.expire(now)
        return self.fit_points + self.behaviour_points

    def active_entries(self) -> list[LedgerEntry]:
        return [e for e in self.ledger if e.state == "active"]


@dataclass(slots=True)
class Timer:
    """A future evaluation: a sequence step, an SLA, an absence check, an expiry."""

    due: int
    prospect: str
    kind: TimerKind
    token: str  # ties the timer to the state it acts on; a stale token means cancelled
    name: str = ""  # the sequence or trigger
    index: int = 0  # the step to run (step timers)
    origin_at: int = 0  # t0 of an absence check

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.token}:{self.name}:{self.index}:{self.due}"


@dataclass(slots=True)
class Decision:
    """One decision record (the contract's JSON object) and its idempotency key."""

    record: dict[str, Any]
    key: str
    context: dict[str, Any] | None = None  # template variables, for delivery
