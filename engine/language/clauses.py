"""Compiling `when`-style clauses and conditions from rule-file data, with positioned problems."""

from __future__ import annotations

import difflib
from typing import Any

from leadrules.engine.core.ruleset import OPERATORS, PAGE_FIELDS, STAGES, FieldCond, Match, Op
from leadrules.engine.errors import Problem
from leadrules.engine.language.regexes import regex_problem
from leadrules.engine.language.yaml_source import Source

_NUMERIC = ("at_least", "at_most", "more_than", "less_than")


def did_you_mean(word: str, options: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _plain(value: Any) -> Any:
    return tuple(_plain(v) for v in value) if isinstance(value, list) else value


def _ops(src: Source, path: tuple[Any, ...], value: Any, problems: list[Problem]) -> tuple[Op, ...]:
    """`VALUE` (equals) or `{OP: ARG, ...}` -> ops."""
    if not isinstance(value, dict):
        return (Op("equals", _plain(value)),)
    if not value:
        problems.append(src.at(path, "a condition needs at least one operator"))
    ops: list[Op] = []
    for name, arg in value.items():
        where = (*path, name)
        if name not in OPERATORS:
            problems.append(
                src.at(where, f"unknown operator {name!r}{did_you_mean(name, OPERATORS)}", key=True)
            )
            continue
        if name == "not":
            ops.append(Op("not", _ops(src, where, arg, problems)))
            continue
        problem = _check_arg(name, arg)
        if problem:
            problems.append(src.at(where, f"{name}: {problem}"))
            continue
        ops.append(Op(name, _plain(arg)))
    return tuple(ops)


def _check_arg(name: str, arg: Any) -> str | None:
    if name == "in" and not isinstance(arg, list):
        return "needs a list"
    if name in ("glob", "matches") and not isinstance(arg, str):
        return "needs a string"
    if name == "matches":
        return regex_problem(str(arg))
    if name in _NUMERIC and (isinstance(arg, bool) or not isinstance(arg, (int, float))):
        return "needs a number"
    if name == "exists" and not isinstance(arg, bool):
        return "needs true or false"
    if name == "contains" and isinstance(arg, (list, dict)):
        return "needs a single value"
    return None


def conditions(
    src: Source,
    path: tuple[Any, ...],
    mapping: dict[str, Any] | None,
    problems: list[Problem],
    *,
    allowed: tuple[str, ...] | None = None,
) -> tuple[FieldCond, ...]:
    """`{name: COND, ...}` -> field conditions. `allowed` restricts the first path segment."""
    out: list[FieldCond] = []
    for name, value in (mapping or {}).items():
        where = (*path, name)
        if not isinstance(name, str) or not name or any(not part for part in name.split(".")):
            problems.append(src.at(where, f"invalid field name {name!r}", key=True))
            continue
        first = name.split(".")[0]
        if allowed is not None and first not in allowed:
            problems.append(
                src.at(
                    where,
                    f"unknown page field {name!r}{did_you_mean(first, allowed)}; "
                    f"use one of {', '.join(allowed)}",
                    key=True,
                )
            )
            continue
        out.append(FieldCond(tuple(name.split(".")), _ops(src, where, value, problems)))
    return tuple(out)


def clause(
    src: Source,
    path: tuple[Any, ...],
    data: dict[str, Any],
    problems: list[Problem],
    *,
    needs_event: bool,
) -> Match:
    """A `when` / `unless` / exit entry -> Match (keys already validated by the model)."""
    from leadrules.engine.core.ruleset import Pos

    line, col = src.values.get(path, (1, 1))
    pos = Pos(src.path, line, col)
    event, page = data.get("event"), data.get("page")
    if event is not None and "page" in data:
        problems.append(
            src.at((*path, "page"), "a clause has either event or page, not both", key=True)
        )
    if needs_event and event is None and "page" not in data:
        problems.append(
            src.at(path, "needs event or page (only scoring fit rules may use trait alone)")
        )
    if "where" in data and event is None and "page" not in data:
        problems.append(src.at((*path, "where"), "where needs event or page", key=True))
    page_conds = (
        conditions(src, (*path, "page"), page, problems, allowed=PAGE_FIELDS)
        if "page" in data
        else ()
    )
    kind = "track" if event is not None else "page" if "page" in data else None
    return Match(
        kind=kind,  # type: ignore[arg-type]
        event=event,
        page=page_conds,
        where=conditions(src, (*path, "where"), data.get("where"), problems),
        trait=conditions(src, (*path, "trait"), data.get("trait"), problems),
        pos=pos,
    )


def stage_condition(
    src: Source, path: tuple[Any, ...], value: Any, problems: list[Problem]
) -> FieldCond:
    """`{stage: COND}` in `exit_when`; every stage named must exist."""
    ops = _ops(src, path, value, problems)

    def named(node: Any, where: tuple[Any, ...]) -> list[tuple[Any, tuple[Any, ...]]]:
        if not isinstance(node, dict):
            return [(node, where)]
        found = []
        for name, arg in node.items():
            if name in ("equals", "not"):
                found += named(arg, (*where, name))
            elif name == "in" and isinstance(arg, list):
                found += [(item, (*where, name, i)) for i, item in enumerate(arg)]
        return found

    if ops:
        for stage, where in named(value, path):
            if stage not in STAGES:
                problems.append(
                    src.at(
                        where,
                        f"unknown stage {stage!r}{did_you_mean(stage, STAGES)}; "
                        f"stages are {', '.join(STAGES)}",
                    )
                )
    return FieldCond(("stage",), ops)
