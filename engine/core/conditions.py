"""Evaluation of the contract's condition operators on plain values.

Semantics (contract "Matching: `when`", plus the decisions written in docs/rules.md):
- a missing field satisfies nothing but `exists: false` and `not: ...`;
- `equals`/`in` use Python equality, except that booleans equal only booleans;
- `at_least`/`at_most`/`more_than`/`less_than` compare numbers; a string that is a plain
  decimal number (`"250"`, `"-1.5"`) counts as that number, since form fields arrive as text;
- `glob` is `fnmatch.fnmatchcase` (so `*` also matches `/`), `matches` is `re.search`;
  it runs on the `regex` module (compatible with `re` for every pattern `check` accepts),
  because that one can stop a search: a search that takes longer than `REGEX_TIMEOUT_S`
  is counted (`regex_timeouts()`) and raises `PatternTimeout`, so one pathological pattern
  or value cannot stall a replay or the daemon — and is never silently read as "no match",
  which would make a decision depend on the machine's load (the daemon sets the item aside,
  a replay stops, naming it). `check` refuses the patterns known to backtrack badly;
- `contains` is a substring test on strings and a membership test on lists.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

import regex

from leadrules.engine.core.ruleset import FieldCond, Op
from leadrules.engine.errors import PatternTimeout

MISSING: Any = object()
_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")

Predicate = Callable[[Any], bool]


def lookup(root: Any, path: tuple[str, ...]) -> Any:
    """The value at a dotted path in nested mappings, or MISSING."""
    value = root
    for key in path:
        if isinstance(value, dict) and key in value:
            value = value[key]
        else:
            return MISSING
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def as_number(value: Any) -> float | int | None:
    """A number for the comparison operators, or None when the value is not numeric."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and _NUMBER.match(value):
        return float(value)
    return None


REGEX_TIMEOUT_S = 1.0
_timeouts = [0]


def regex_timeouts() -> int:
    """How many `matches` searches were stopped by the timeout in this process."""
    return _timeouts[0]


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> regex.Pattern[str]:
    return regex.compile(pattern)


# A `matches` condition remembers its answer for this many short values (a job title, a
# page path: the same few values come again and again); longer values are searched anew.
SEARCH_CACHE_SIZE = 4096
SEARCH_CACHE_CHARS = 256


def _searcher(pattern: str) -> Predicate:
    search = _regex(pattern).search
    answers: dict[str, bool] = {}

    def found(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        known = answers.get(value)
        if known is not None:
            return known
        try:
            hit = search(value, timeout=REGEX_TIMEOUT_S) is not None
        except TimeoutError:
            _timeouts[0] += 1
            raise PatternTimeout(pattern, REGEX_TIMEOUT_S) from None
        if len(value) <= SEARCH_CACHE_CHARS:
            if len(answers) >= SEARCH_CACHE_SIZE:
                answers.clear()
            answers[value] = hit
        return hit

    return found


def _contains(value: Any, arg: Any) -> bool:
    if isinstance(value, str):
        return isinstance(arg, str) and arg in value
    if isinstance(value, (list, tuple)):
        return any(_same(item, arg) for item in value)
    return False


def compile_op(op: Op) -> Predicate:
    """One operator -> a predicate on a value (which may be MISSING)."""
    name, arg = op.name, op.arg
    if name == "equals":
        return lambda v: v is not MISSING and _same(v, arg)
    if name == "in":
        options = tuple(arg)
        return lambda v: v is not MISSING and any(_same(v, o) for o in options)
    if name == "glob":
        pattern = str(arg)
        return lambda v: isinstance(v, str) and fnmatchcase(v, pattern)
    if name == "matches":
        return _searcher(str(arg))
    if name == "contains":
        return lambda v: _contains(v, arg)
    if name == "exists":
        wanted = bool(arg)
        return lambda v: (v is not MISSING and v is not None) == wanted
    if name == "not":
        inner = compile_ops(tuple(arg))
        return lambda v: not inner(v)
    limit = arg
    if name == "at_least":
        return lambda v: (n := as_number(v)) is not None and n >= limit
    if name == "at_most":
        return lambda v: (n := as_number(v)) is not None and n <= limit
    if name == "more_than":
        return lambda v: (n := as_number(v)) is not None and n > limit
    if name == "less_than":
        return lambda v: (n := as_number(v)) is not None and n < limit
    raise ValueError(f"unknown operator {name!r}")


def compile_ops(ops: tuple[Op, ...]) -> Predicate:
    """Several operators that must all hold."""
    predicates = [compile_op(op) for op in ops]
    if len(predicates) == 1:
        return predicates[0]
    return lambda v: all(p(v) for p in predicates)


def compile_field(cond: FieldCond) -> Callable[[Any], bool]:
    """A field condition -> a predicate on the mapping the path starts from."""
    test = compile_ops(cond.ops)
    path = cond.path
    if len(path) == 1:
        key = path[0]
        return lambda root: test(root.get(key, MISSING) if isinstance(root, dict) else MISSING)
    return lambda root: test(lookup(root, path))


def compile_fields(conds: tuple[FieldCond, ...]) -> Callable[[Any], bool] | None:
    """All conditions on one mapping; None when there are none (always true)."""
    if not conds:
        return None
    predicates = [compile_field(c) for c in conds]
    if len(predicates) == 1:
        return predicates[0]
    return lambda root: all(p(root) for p in predicates)
