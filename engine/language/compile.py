"""One validated rule file -> compiled rules, positions and the references to check later."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ValidationError

from leadrules.engine.core.ruleset import (
    NOWHERE,
    AccountRules,
    Action,
    ActionKind,
    FieldCond,
    Lifecycle,
    Limit,
    Match,
    Pos,
    ScoringRule,
    Sequence,
    Step,
    Trigger,
)
from leadrules.engine.errors import Problem
from leadrules.engine.language.account_rules import compile_accounts, trigger_scope
from leadrules.engine.language.clauses import clause, did_you_mean, stage_condition
from leadrules.engine.language.rule_files import (
    LifecycleModel,
    ScoringModel,
    ScoringRuleModel,
    SequenceModel,
    TriggerModel,
)
from leadrules.engine.language.send_window_config import business_hours
from leadrules.engine.language.state_clauses import any_event, state_conditions
from leadrules.engine.language.validation import validation_problems
from leadrules.engine.language.yaml_source import Source

Key = TypeVar("Key", int, str)


@dataclass
class FileRules:
    scoring: list[ScoringRule] = field(default_factory=list)
    triggers: list[Trigger] = field(default_factory=list)
    sequences: dict[str, Sequence] = field(default_factory=dict)
    lifecycle: Lifecycle | None = None
    lifecycle_pos: Pos = NOWHERE
    accounts: AccountRules | None = None
    ids: list[tuple[str, Pos]] = field(default_factory=list)
    references: list[tuple[str, str, Pos]] = field(default_factory=list)  # (kind, name, where)


class _Compiler:
    def __init__(self, src: Source) -> None:
        self.src = src
        self.problems: list[Problem] = []
        self.out = FileRules()

    def pos(self, path: tuple[Any, ...], *, key: bool = False) -> Pos:
        table = self.src.keys if key else self.src.values
        line, col = table.get(path) or self.src.values.get(path) or (1, 1)
        return Pos(self.src.path, line, col)

    def actions(
        self, path: tuple[Any, ...], items: list[dict[str, Any]] | None
    ) -> tuple[Action, ...]:
        out = []
        for i, item in enumerate(items or []):
            here = (*path, i)
            ((kind, value),) = item.items()
            where = self.pos((*here, kind), key=True)
            if kind in ("notify", "send"):
                self.references((*here, kind), value)
                out.append(
                    Action(cast(ActionKind, kind), value["channel"], value["template"], pos=where)
                )
            else:
                self.out.references.append(("sequence", value, self.pos((*here, kind))))
                out.append(Action(cast(ActionKind, kind), sequence=value, pos=where))
        return tuple(out)

    def references(self, path: tuple[Any, ...], message: dict[str, Any]) -> None:
        self.out.references.append(("channel", message["channel"], self.pos((*path, "channel"))))
        self.out.references.append(("template", message["template"], self.pos((*path, "template"))))

    def scoring(self, default: int | None, rules: list[tuple[int, dict[str, Any]]]) -> None:
        for i, rule in rules:
            path = ("scoring", "rules", i)
            when = rule["when"]
            for bad in ("times", "within"):
                if bad in when:
                    self.problems.append(
                        self.src.at((*path, "when", bad), f"{bad} is only for triggers", key=True)
                    )
            match = clause(self.src, (*path, "when"), when, self.problems, needs_event=False)
            expires = rule.get("expires_after")
            if match.kind is None:
                if "expires_after" in rule:
                    self.problems.append(
                        self.src.at(
                            (*path, "expires_after"),
                            "a fit rule (trait only) never expires",
                            key=True,
                        )
                    )
                if "limit" in rule:
                    self.problems.append(
                        self.src.at(
                            (*path, "limit"), "a fit rule (trait only) has no limit", key=True
                        )
                    )
                expires = None
            elif expires is None:
                expires = default
            limit = None
            if rule.get("limit") is not None:
                lim = rule["limit"]
                if lim["times"] < 1:
                    self.problems.append(
                        self.src.at((*path, "limit", "times"), "times must be at least 1")
                    )
                limit = Limit(lim["times"], lim.get("per"))
            where = self.pos((*path, "id"))
            self.out.ids.append((rule["id"], where))
            self.out.scoring.append(
                ScoringRule(
                    rule["id"],
                    match,
                    rule["points"],
                    limit,
                    expires,
                    rule.get("description"),
                    where,
                )
            )

    def triggers(self, items: list[tuple[int, dict[str, Any]]]) -> None:
        for i, trig in items:
            path = ("triggers", i)
            when = trig["when"]
            times, within = when.get("times"), when.get("within")
            if (times is None) != (within is None):
                missing = "within" if within is None else "times"
                self.problems.append(
                    self.src.at((*path, "when"), f"times and within go together: add {missing}")
                )
            if times is not None and times < 1:
                self.problems.append(
                    self.src.at((*path, "when", "times"), "times must be at least 1")
                )
            match = clause(self.src, (*path, "when"), when, self.problems, needs_event=True)
            unless = trig.get("unless")
            unless_match = None
            if unless is not None and "any" in unless:
                unless_match = any_event(self.src, (*path, "unless"), unless, self.problems)
            elif unless is not None:
                unless_match = clause(
                    self.src, (*path, "unless"), unless, self.problems, needs_event=True
                )
            scope, distinct = trigger_scope(self.src, path, trig, self.problems)
            where = self.pos((*path, "id"))
            self.out.ids.append((trig["id"], where))
            self.out.triggers.append(
                Trigger(
                    trig["id"],
                    match,
                    self.actions((*path, "then"), trig["then"]),
                    times,
                    within,
                    trig.get("cooldown"),
                    unless_match,
                    unless["within"] if unless else None,
                    trig.get("description"),
                    where,
                    state_conditions(self.src, (*path, "when"), when, self.problems),
                    "account" if scope == "account" else "prospect",
                    distinct,
                )
            )

    def lifecycle(self, data: dict[str, Any]) -> None:
        sla = data.get("sla") or {}
        reject = data.get("on_reject") or {}
        cap = data.get("send_cap")
        self.out.lifecycle_pos = self.pos(("lifecycle",), key=True)
        self.out.lifecycle = Lifecycle(
            data.get("mql_threshold"),
            self.actions(("lifecycle", "on_mql"), data.get("on_mql")),
            sla.get("accept_within"),
            self.actions(("lifecycle", "sla", "on_breach"), sla.get("on_breach")),
            bool(reject.get("reset_score", False)),
            self.actions(("lifecycle", "on_reject", "then"), reject.get("then")),
            reject.get("default_reason"),
            data.get("deal_lost_stage"),
            business_hours(
                self.src, ("lifecycle", "sla"), sla.get("business_hours"), self.problems
            ),
            None if cap is None else (cap["times"], cap["per"]),
        )

    def sequences(self, items: dict[str, Any]) -> None:
        for name, seq in items.items():
            path = ("sequences", name)
            steps = []
            for i, step in enumerate(seq["steps"]):
                ((kind, value),) = step.items()
                here: tuple[Any, ...] = (*path, "steps", i, kind)
                if kind == "wait":
                    steps.append(
                        Step(
                            "wait",
                            wait_us=value,
                            pos=self.pos(here, key=True),
                        )
                    )
                else:
                    self.references(here, value)
                    steps.append(
                        Step(
                            kind, value["channel"], value["template"], pos=self.pos(here, key=True)
                        )
                    )
            if not steps:
                self.problems.append(
                    self.src.at((*path, "steps"), "a sequence needs at least one step")
                )
            exit_events: list[Match] = []
            exit_stages: list[FieldCond] = []
            for i, entry in enumerate(seq.get("exit_when") or []):
                here = (*path, "exit_when", i)
                if "stage" in entry:
                    if len(entry) > 1:
                        self.problems.append(self.src.at(here, "a stage entry holds only stage"))
                    exit_stages.append(
                        stage_condition(self.src, (*here, "stage"), entry["stage"], self.problems)
                    )
                elif not entry:
                    self.problems.append(
                        self.src.at(here, "an exit_when entry needs event, page, trait or stage")
                    )
                else:
                    exit_events.append(
                        clause(self.src, here, entry, self.problems, needs_event=False)
                    )
            self.out.sequences[name] = Sequence(
                name,
                tuple(steps),
                tuple(exit_events),
                tuple(exit_stages),
                seq.get("description"),
                self.pos(path, key=True),
            )


_TOP_LEVEL = ("scoring", "lifecycle", "triggers", "sequences", "accounts")


def _valid(
    src: Source, model: type[BaseModel], data: Any, path: tuple[Any, ...], problems: list[Problem]
) -> dict[str, Any] | None:
    """Validate one item on its own, so one bad item hides no problem in the others.

    The item comes back as plain data with only the keys the file gave (durations now in
    microseconds), or None when it is invalid."""
    try:
        return model.model_validate(data).model_dump(exclude_unset=True)
    except ValidationError as exc:
        problems.extend(validation_problems(src, exc, model=model, prefix=path))
        return None


def _valid_items(
    src: Source,
    model: type[BaseModel],
    items: Iterable[tuple[Key, Any]],
    path: tuple[Any, ...],
    problems: list[Problem],
) -> list[tuple[Key, dict[str, Any]]]:
    """The valid items of a list or mapping, each validated on its own, with its key."""
    out = []
    for key, item in items:
        valid = _valid(src, model, item, (*path, key), problems)
        if valid is not None:
            out.append((key, valid))
    return out


def compile_file(src: Source) -> tuple[FileRules, list[Problem]]:
    """Validate and compile one rule file, item by item."""
    data = src.data
    compiler = _Compiler(src)
    problems = compiler.problems
    for key in data:
        if key not in _TOP_LEVEL:
            problems.append(
                src.at((key,), f"unknown key {key!r}{did_you_mean(str(key), _TOP_LEVEL)}", key=True)
            )

    scoring = data.get("scoring")
    if scoring is not None:
        head = (
            {k: v for k, v in scoring.items() if k != "rules"}
            if isinstance(scoring, dict)
            else scoring
        )
        valid_head = _valid(src, ScoringModel, head, ("scoring",), problems)
        if valid_head is not None:
            rules = scoring.get("rules") or []
            if not isinstance(rules, list):
                problems.append(src.at(("scoring", "rules"), "rules: a list of scoring rules"))
            else:
                good = _valid_items(
                    src, ScoringRuleModel, enumerate(rules), ("scoring", "rules"), problems
                )
                compiler.scoring(valid_head.get("expires_after"), good)

    triggers = data.get("triggers")
    if triggers is not None:
        if not isinstance(triggers, list):
            problems.append(src.at(("triggers",), "triggers: a list of triggers"))
        else:
            compiler.triggers(
                _valid_items(src, TriggerModel, enumerate(triggers), ("triggers",), problems)
            )

    if "lifecycle" in data:
        lifecycle = _valid(src, LifecycleModel, data["lifecycle"] or {}, ("lifecycle",), problems)
        if lifecycle is not None:
            compiler.lifecycle(lifecycle)

    if "accounts" in data:
        accounts = compile_accounts(src, data["accounts"], problems, compiler.actions)
        if accounts is not None:
            compiler.out.accounts = accounts[0]
            compiler.out.ids += accounts[1]

    sequences = data.get("sequences")
    if sequences is not None:
        if not isinstance(sequences, dict):
            problems.append(src.at(("sequences",), "sequences: a mapping of name to sequence"))
        else:
            compiler.sequences(
                dict(_valid_items(src, SequenceModel, sequences.items(), ("sequences",), problems))
            )
    return compiler.out, problems
