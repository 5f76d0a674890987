"""The `accounts:` section and account triggers (`scope: account`), compiled with positioned
problems (docs/rules.md, "Accounts").

Account decisions are messages to sales about an account, so the actions of `on_mql` and of
an account trigger are `notify` only; an account trigger counts events of the account and
so takes neither `unless` nor the prospect's `stage`/`score`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from leadrules.engine.core.ruleset import AccountRules, Action, Pos, ScoringRule
from leadrules.engine.errors import Problem
from leadrules.engine.language.clauses import clause
from leadrules.engine.language.rule_files import AccountFitRuleModel, AccountsModel
from leadrules.engine.language.validation import validation_problems
from leadrules.engine.language.yaml_source import Source

Actions = Callable[[tuple[Any, ...], list[dict[str, Any]] | None], tuple[Action, ...]]


def _notify_only(
    src: Source, path: tuple[Any, ...], items: Any, what: str, problems: list[Problem]
) -> None:
    for i, item in enumerate(items or []):
        if not isinstance(item, dict):
            continue
        for kind in item:
            if kind != "notify":
                problems.append(
                    src.at(
                        (*path, i, kind),
                        f"{what} only notifies sales: use notify, not {kind}",
                        key=True,
                    )
                )


def compile_accounts(
    src: Source, data: Any, problems: list[Problem], actions: Actions
) -> tuple[AccountRules, list[tuple[str, Pos]]] | None:
    """`accounts:` -> AccountRules and the ids of its fit rules (None when invalid)."""
    path = ("accounts",)
    raw = data if data is not None else {}
    head = {k: v for k, v in raw.items() if k != "fit"} if isinstance(raw, dict) else raw
    try:
        valid = AccountsModel.model_validate(head).model_dump(exclude_unset=True)
    except ValidationError as exc:
        problems.extend(validation_problems(src, exc, model=AccountsModel, prefix=path))
        return None
    fit_items = raw.get("fit") or []
    if not isinstance(fit_items, list):
        problems.append(src.at((*path, "fit"), "fit: a list of account fit rules"))
        fit_items = []
    fit: list[ScoringRule] = []
    ids: list[tuple[str, Pos]] = []
    for i, item in enumerate(fit_items):
        here = (*path, "fit", i)
        try:
            rule = AccountFitRuleModel.model_validate(item).model_dump(exclude_unset=True)
        except ValidationError as exc:
            problems.extend(validation_problems(src, exc, model=AccountFitRuleModel, prefix=here))
            continue
        match = clause(src, (*here, "when"), rule["when"], problems, needs_event=False)
        line, col = src.values.get((*here, "id"), (1, 1))
        where = Pos(src.path, line, col)
        ids.append((rule["id"], where))
        fit.append(
            ScoringRule(
                rule["id"], match, rule["points"], description=rule.get("description"), pos=where
            )
        )
    _notify_only(src, (*path, "on_mql"), valid.get("on_mql"), "accounts.on_mql", problems)
    line, col = src.keys.get(path, (1, 1))
    rules = AccountRules(
        top=valid.get("top", 3),
        fit=tuple(fit),
        mql_threshold=valid.get("mql_threshold"),
        on_mql=actions((*path, "on_mql"), valid.get("on_mql")),
        pos=Pos(src.path, line, col),
    )
    return rules, ids


def trigger_scope(
    src: Source, path: tuple[Any, ...], trigger: dict[str, Any], problems: list[Problem]
) -> tuple[str, bool]:
    """A trigger's `scope` and `distinct`, with the problems of an account trigger."""
    when = trigger["when"]
    scope = trigger.get("scope") or "prospect"
    distinct = when.get("distinct") == "prospects"
    if "distinct" in when:
        if scope != "account":
            problems.append(
                src.at(
                    (*path, "when", "distinct"),
                    "distinct is for account triggers: add scope: account",
                    key=True,
                )
            )
        elif when.get("times") is None:
            problems.append(
                src.at((*path, "when", "distinct"), "distinct needs times and within", key=True)
            )
    if scope != "account":
        return scope, distinct
    if "unless" in trigger:
        problems.append(
            src.at((*path, "unless"), "an account trigger has no unless (absence)", key=True)
        )
    for key in ("stage", "score"):
        if key in when:
            problems.append(
                src.at(
                    (*path, "when", key),
                    f"{key} is the prospect's: an account trigger counts the account's events",
                    key=True,
                )
            )
    _notify_only(src, (*path, "then"), trigger.get("then"), "an account trigger", problems)
    return scope, distinct
