"""pydantic's validation errors as positioned problems that read like the rest of `check`."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from leadrules.engine.errors import Problem
from leadrules.engine.language.clauses import did_you_mean
from leadrules.engine.language.rule_files import RuleFile
from leadrules.engine.language.yaml_source import Source


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that holds the last element of `loc`, walking from `root`."""
    current: Any = root
    for part in loc[:-1]:
        while True:
            origin = typing.get_origin(current)
            args = [a for a in typing.get_args(current) if a is not type(None)]
            if origin in (list, dict) and isinstance(part, (int, str)) and args:
                if origin is list and not isinstance(part, int):
                    return None
                current = args[-1]
                break
            if args and origin is not None and origin not in (list, dict):
                current = args[0]  # X | None
                continue
            if isinstance(current, type) and issubclass(current, BaseModel):
                if part not in current.model_fields:
                    return None
                current = current.model_fields[part].annotation
                break
            return None
    while True:
        origin = typing.get_origin(current)
        args = [a for a in typing.get_args(current) if a is not type(None)]
        if isinstance(current, type) and issubclass(current, BaseModel):
            return current
        if origin is not None and args and origin not in (list, dict):
            current = args[0]
            continue
        return None


def validation_problems(
    src: Source,
    exc: ValidationError,
    *,
    model: type[BaseModel] = RuleFile,
    prefix: tuple[Any, ...] = (),
    noun: str = "key",
) -> list[Problem]:
    """pydantic's errors -> positioned problems that read well."""
    problems = []
    for error in exc.errors():
        inner = tuple(error["loc"])
        loc = (*prefix, *inner)
        kind = error["type"]
        name = loc[-1] if loc else ""
        if kind == "extra_forbidden":
            if name in ("times", "within") and prefix[:1] == ("scoring",):
                problems.append(src.at(loc, f"{name} is only for triggers", key=True))
                continue
            holder = _model_at(model, inner)
            known = list(holder.model_fields) if holder else []
            problems.append(
                src.at(loc, f"unknown {noun} {name!r}{did_you_mean(str(name), known)}", key=True)
            )
        elif kind == "missing":
            problems.append(src.at(loc[:-1], f"missing {noun} {name!r}"))
        elif kind in ("model_type", "model_attributes_type", "dict_type") and not inner:
            problems.append(src.at(loc, f"{prefix[-1] if prefix else 'file'}: expected a mapping"))
        elif kind == "value_error":
            problems.append(src.at(loc, str(error["msg"]).removeprefix("Value error, ")))
        else:
            message = str(error["msg"])
            message = message[0].lower() + message[1:] if message else message
            label = f"{name}: " if isinstance(name, str) and name else ""
            problems.append(src.at(loc, f"{label}{message}"))
    return problems
