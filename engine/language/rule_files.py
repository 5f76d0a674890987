"""pydantic models of rule files: the shape of each key, with unknown keys refused.

These check structure and types, and convert durations at the door: a `Duration` field holds
integer microseconds once validated, and a malformed one is a positioned problem like any other
type error. Conditions and references are checked when the loader compiles a file
(leadrules.engine.language.compile), where each problem gets its position.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from leadrules.engine.timefmt import US_PER_S, parse_duration

# Bounds on numbers (docs/rules.md, "Limits"): generous for any real rule, small enough that
# sums of points, counts of events and timestamps plus durations stay far inside 64 bits.
MAX_POINTS = 1_000_000  # |points| of one rule
MAX_SCORE = 1_000_000_000  # |mql_threshold|
MAX_TIMES = 10_000  # `when.times` and `limit.times`
MAX_DURATION_DAYS = 36_500  # 100 years


def _duration(value: object) -> int:
    """parse_duration, bounded: at most MAX_DURATION_DAYS (a 30-digit duration would not fit
    in 64 bits of microseconds, and a 5,000-digit one is not worth converting)."""
    if isinstance(value, str) and len(value) > 20:
        raise ValueError(f"duration must be at most {MAX_DURATION_DAYS}d (100 years)")
    us = parse_duration(value)
    if us > MAX_DURATION_DAYS * 86_400 * US_PER_S:
        raise ValueError(
            f"duration must be at most {MAX_DURATION_DAYS}d (100 years), got {value!r}"
        )
    return us


Conditions = dict[str, Any]
# `30d` in the file, 2_592_000_000_000 (microseconds) in the model. parse_duration's
# ValueError carries the contract's message; validation places it at the value.
Duration = Annotated[
    int,
    BeforeValidator(_duration),
    WithJsonSchema({"type": "string", "pattern": "^[0-9]+[smhdw]$"}),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class MessageRef(Strict):
    """Which channel delivers which template (not the rendered message: see adapters.base)."""

    channel: str = Field(description="A channel from config/channels.yaml")
    template: str = Field(description="A template in rules/templates/ (NAME.md or NAME.txt)")


class ActionModel(Strict):
    """Exactly one of the keys."""

    notify: MessageRef | None = Field(None, description="A message to sales")
    send: MessageRef | None = Field(None, description="A message to the prospect (nurture)")
    start_sequence: str | None = Field(None, description="Enrol in a sequence")
    stop_sequence: str | None = Field(None, description="Leave a sequence")

    @model_validator(mode="after")
    def _one(self) -> ActionModel:
        given = [
            k
            for k in ("notify", "send", "start_sequence", "stop_sequence")
            if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "an action is exactly one of notify, send, start_sequence, stop_sequence"
            )
        return self


class Clause(Strict):
    event: str | None = Field(None, description="A track event with exactly this name")
    page: Conditions | None = Field(
        None, description="A page view; conditions on path, url, title, referrer, search, name"
    )
    where: Conditions | None = Field(None, description="Conditions on the event's properties")
    trait: Conditions | None = Field(
        None, description="Conditions on the prospect's current traits"
    )


class When(Clause):
    times: int | None = Field(
        None, le=MAX_TIMES, description="Fire when this many matching events lie within `within`"
    )
    within: Duration | None = Field(None, description="The window for `times`, e.g. 7d")
    stage: Any = Field(
        None, description="A condition on the prospect's stage at the event, e.g. {in: [mql, sal]}"
    )
    score: Any = Field(
        None, description="A condition on the prospect's score at the event, e.g. {at_least: 50}"
    )
    distinct: Literal["prospects"] | None = Field(
        None,
        description="With scope: account, `times` counts different prospects, not events",
    )


class Unless(Clause):
    any: dict[str, Any] | None = Field(
        None, description="`any: {}`: an event of any kind (no activity at all within `within`)"
    )
    within: Duration = Field(
        description="How long to wait for an event matching `unless`, e.g. 30d"
    )


class LimitModel(Strict):
    times: int = Field(le=MAX_TIMES, description="At most this many awards")
    per: Duration | None = Field(
        None, description="In any rolling window this long; without it, a lifetime limit"
    )


class ScoringRuleModel(Strict):
    id: str
    description: str | None = None
    when: Clause
    points: int = Field(ge=-MAX_POINTS, le=MAX_POINTS)
    limit: LimitModel | None = None
    expires_after: Duration | None = Field(
        None, description="These points stop counting this long after the event"
    )


class ScoringModel(Strict):
    expires_after: Duration | None = Field(
        None, description="Default expiry of this file's behaviour rules"
    )
    rules: list[ScoringRuleModel] = Field(default_factory=list)


class BusinessHours(Strict):
    hours: str = Field(description='Local working hours, "HH:MM-HH:MM", e.g. "09:00-17:00"')
    days: list[str] = Field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"], description="Working days"
    )
    timezone: str = Field("UTC", description="An IANA time zone, e.g. Europe/Berlin")


class Sla(Strict):
    accept_within: Duration
    business_hours: BusinessHours | None = Field(
        None, description="Count accept_within in these working hours only"
    )
    on_breach: list[ActionModel] = Field(default_factory=list)


class OnReject(Strict):
    reset_score: bool = False
    default_reason: str | None = Field(
        None, description="The reason kept for a Lead Rejected without one, e.g. unspecified"
    )
    then: list[ActionModel] = Field(default_factory=list)


class SendCap(Strict):
    times: int = Field(ge=1, le=MAX_TIMES, description="At most this many sends")
    per: Duration = Field(description="Within any span this long, e.g. 7d")


class LifecycleModel(Strict):
    mql_threshold: int | None = Field(None, ge=-MAX_SCORE, le=MAX_SCORE)
    send_cap: SendCap | None = Field(
        None,
        description="At most `times` sends to one prospect within any `per`, across every "
        "sequence, trigger and channel",
    )
    on_mql: list[ActionModel] = Field(default_factory=list)
    sla: Sla | None = None
    on_reject: OnReject | None = None
    deal_lost_stage: Literal["recycled", "lead"] | None = Field(
        None, description="Where Deal Lost moves a prospect (mql, sal or sql); default: nowhere"
    )


class TriggerModel(Strict):
    id: str
    description: str | None = None
    scope: Literal["prospect", "account"] | None = Field(
        None,
        description="account: count the matching events of every prospect of the account "
        "(default: prospect)",
    )
    when: When
    unless: Unless | None = None
    cooldown: Duration | None = None
    then: list[ActionModel]


class ExitEntry(Clause):
    stage: Any = Field(
        None, description="A condition on the prospect's stage, e.g. {in: [sal, sql]}"
    )


class StepModel(Strict):
    """Exactly one of the keys."""

    send: MessageRef | None = None
    notify: MessageRef | None = None
    wait: Duration | None = Field(None, description="Pause this long, e.g. 2d")

    @model_validator(mode="after")
    def _one(self) -> StepModel:
        given = [k for k in ("send", "notify", "wait") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a step is exactly one of send, notify, wait")
        return self


class SequenceModel(Strict):
    description: str | None = None
    exit_when: list[ExitEntry] = Field(default_factory=list)
    steps: list[StepModel]


class AccountFitWhen(Strict):
    trait: Conditions = Field(description="Conditions on the account's traits (group calls)")


class AccountFitRuleModel(Strict):
    id: str
    description: str | None = None
    when: AccountFitWhen
    points: int = Field(ge=-MAX_POINTS, le=MAX_POINTS)


class AccountsModel(Strict):
    top: int = Field(
        3, ge=1, le=MAX_TIMES, description="How many of the highest prospect scores count"
    )
    fit: list[AccountFitRuleModel] = Field(
        default_factory=list, description="Fit rules over the account's traits"
    )
    mql_threshold: int | None = Field(None, ge=-MAX_SCORE, le=MAX_SCORE)
    on_mql: list[ActionModel] = Field(
        default_factory=list, description="Notifications when the account becomes an MQL"
    )


class RuleFile(Strict):
    """One rule file; every top-level key is optional."""

    scoring: ScoringModel | None = None
    lifecycle: LifecycleModel | None = None
    triggers: list[TriggerModel] | None = None
    sequences: dict[str, SequenceModel] | None = None
    accounts: AccountsModel | None = None
