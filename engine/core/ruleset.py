"""The compiled, validated rule set: what the loader produces and the evaluator consumes.

Everything here is immutable plain data. Durations are integer microseconds. `Pos` keeps
where each piece came from so that later checks (and `explain`) can point at the source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from leadrules.engine.core.send_windows import SendWindow

# The lifecycle stages (contract "Lifecycle"), in their order along the funnel.
Stage = Literal["lead", "mql", "sal", "sql", "customer", "recycled"]
STAGES: tuple[Stage, ...] = get_args(Stage)

OPERATORS: tuple[str, ...] = (
    "equals",
    "in",
    "glob",
    "matches",
    "contains",
    "at_least",
    "at_most",
    "more_than",
    "less_than",
    "exists",
    "not",
)

PAGE_FIELDS: tuple[str, ...] = ("path", "url", "title", "referrer", "search", "name")


@dataclass(frozen=True)
class Pos:
    """A 1-based position in a source file."""

    path: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


NOWHERE = Pos("<none>", 0, 0)


@dataclass(frozen=True)
class Op:
    """One operator of a condition. For `not`, `arg` is a tuple of `Op` (all must hold)."""

    name: str
    arg: Any


@dataclass(frozen=True)
class FieldCond:
    """`path: {op: arg, ...}`: every op must hold on the value found at `path`.

    `name: VALUE` compiles to a single `equals` op.
    """

    path: tuple[str, ...]
    ops: tuple[Op, ...]


@dataclass(frozen=True)
class Match:
    """A compiled `when` (or `unless`, or event entry of `exit_when`).

    kind: "track" when `event` is given, "page" when `page` is given, None when neither
    (a fit rule: traits only). `page` holds conditions on page properties, where `name` means
    the message's top-level `name`. `where` is on the message's `properties`; `trait` on the
    prospect's current traits.
    """

    kind: Literal["track", "page"] | None
    event: str | None = None
    page: tuple[FieldCond, ...] = ()
    where: tuple[FieldCond, ...] = ()
    trait: tuple[FieldCond, ...] = ()
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class Limit:
    times: int
    per_us: int | None  # None: a lifetime limit


@dataclass(frozen=True)
class ScoringRule:
    id: str
    match: Match
    points: int
    limit: Limit | None = None
    expires_after_us: int | None = None  # already resolved against the file's default
    description: str | None = None
    pos: Pos = NOWHERE

    @property
    def is_fit(self) -> bool:
        """A fit rule has only `trait` conditions: it counts while the traits hold."""
        return self.match.kind is None


ActionKind = Literal["notify", "send", "start_sequence", "stop_sequence"]


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    channel: str | None = None
    template: str | None = None
    sequence: str | None = None
    pos: Pos = NOWHERE


StepKind = Literal["send", "notify", "wait"]


@dataclass(frozen=True)
class Step:
    kind: StepKind
    channel: str | None = None
    template: str | None = None
    wait_us: int | None = None
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class Sequence:
    name: str
    steps: tuple[Step, ...]
    exit_events: tuple[Match, ...] = ()  # entries with event/page/where/trait
    exit_stages: tuple[FieldCond, ...] = ()  # entries `{stage: COND}`; path is ("stage",)
    description: str | None = None
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class Trigger:
    id: str
    match: Match
    actions: tuple[Action, ...]
    times: int | None = None
    within_us: int | None = None
    cooldown_us: int | None = None
    unless: Match | None = None
    unless_within_us: int | None = None
    description: str | None = None
    pos: Pos = NOWHERE
    # `when: {stage: COND, score: COND}`: paths ("stage",) and ("score",), read after the
    # event's scoring (docs/rules.md, "Triggers").
    state: tuple[FieldCond, ...] = ()
    # `scope: account`: counts the matching events of every prospect of the event's account
    # (core.account_triggers); `distinct: prospects` counts prospects instead of events.
    scope: Literal["prospect", "account"] = "prospect"
    distinct: bool = False


@dataclass(frozen=True)
class Lifecycle:
    mql_threshold: int | None = None
    on_mql: tuple[Action, ...] = ()
    sla_accept_within_us: int | None = None
    on_breach: tuple[Action, ...] = ()
    reset_score_on_reject: bool = False
    on_reject: tuple[Action, ...] = ()
    default_reject_reason: str | None = None  # on_reject.default_reason
    deal_lost_stage: Stage | None = None  # None: Deal Lost changes no stage (contract)
    sla_business_hours: SendWindow | None = None  # sla.business_hours: count only these
    # send_cap: (times, per_us): sends to one prospect through every channel together
    send_cap: tuple[int, int] | None = None


@dataclass(frozen=True)
class AccountRules:
    """`accounts:` (core.accounts): the account score is its fit points plus the sum of its
    `top` highest prospect scores; reaching `mql_threshold` runs `on_mql` (notifications)."""

    top: int = 3
    fit: tuple[ScoringRule, ...] = ()  # trait-only rules over the account's traits
    mql_threshold: int | None = None
    on_mql: tuple[Action, ...] = ()
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class Channel:
    """A delivery channel from `config/channels.yaml`. `settings` holds the adapter's keys,
    with `${ENV}` references left unresolved (they are read only when something is sent)."""

    name: str
    adapter: str
    settings: dict[str, Any] = field(default_factory=dict)
    pos: Pos = NOWHERE
    # `stage_changes: {template: T, stages: [...]}`: told of every set_stage (to those stages;
    # empty: all) by a notify with this template, without a rule per stage.
    stage_template: str | None = None
    stage_filter: tuple[str, ...] = ()
    send_window: SendWindow | None = None  # quiet hours for `send` (core.send_windows)
    send_cap: tuple[int, int] | None = None  # (times, per_us): sends per prospect


@dataclass(frozen=True)
class RuleSet:
    scoring: tuple[ScoringRule, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    sequences: dict[str, Sequence] = field(default_factory=dict)
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    templates: dict[str, str] = field(default_factory=dict)  # name -> file path
    channels: dict[str, Channel] = field(default_factory=dict)
    version: str = ""  # content hash of every file that went in
    # None: no `accounts:` section and no account trigger; accounts are then only kept on
    # the prospects (`group`), as plain data for explain and report.
    accounts: AccountRules | None = None
