"""Trigger clauses about the prospect rather than the event: `when: {stage, score}` and
`unless: {any: {}}`.

`trait: {stage: ...}` reads a *trait* called stage (as the contract says trait conditions
do), which is why the prospect's lifecycle stage and score have keys of their own.
"""

from __future__ import annotations

from typing import Any

from leadrules.engine.core.ruleset import FieldCond, Match, Pos
from leadrules.engine.errors import Problem
from leadrules.engine.language.clauses import _ops, stage_condition
from leadrules.engine.language.yaml_source import Source

_SCORE_OPS = ("equals", "in", "at_least", "at_most", "more_than", "less_than", "not")


def state_conditions(
    src: Source, path: tuple[Any, ...], when: dict[str, Any], problems: list[Problem]
) -> tuple[FieldCond, ...]:
    """`stage:` and `score:` of a trigger's `when` -> conditions on ("stage",) / ("score",)."""
    out: list[FieldCond] = []
    if when.get("stage") is not None:
        out.append(stage_condition(src, (*path, "stage"), when["stage"], problems))
    if when.get("score") is not None:
        value = when["score"]
        where = (*path, "score")
        if isinstance(value, dict):
            for name in value:
                if name not in _SCORE_OPS:
                    problems.append(
                        src.at(
                            (*where, name),
                            f"score: {name!r} does not apply to a number; "
                            f"use one of {', '.join(_SCORE_OPS)}",
                            key=True,
                        )
                    )
        elif isinstance(value, bool) or not isinstance(value, int):
            problems.append(src.at(where, "score: needs a number or a condition"))
        out.append(FieldCond(("score",), _ops(src, where, value, problems)))
    return tuple(out)


def any_event(
    src: Source, path: tuple[Any, ...], unless: dict[str, Any], problems: list[Problem]
) -> Match:
    """`unless: {any: {}, within: D}`: an event of any kind cancels the absence check."""
    if unless["any"]:
        problems.append(src.at((*path, "any"), "any takes no conditions: write `any: {}`"))
    others = [k for k in unless if k not in ("any", "within")]
    for key in others:
        problems.append(src.at((*path, key), f"any stands alone: remove {key!r}", key=True))
    line, col = src.values.get(path, (1, 1))
    return Match(kind=None, pos=Pos(src.path, line, col))
