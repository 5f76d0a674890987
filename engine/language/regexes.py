"""What `check` requires of a `matches` pattern, so that no rule can stall evaluation.

A pattern must compile with Python's `re` (the contract's semantics) and with the `regex`
module the evaluator runs it on (leadrules.engine.core.conditions, which also bounds every
search by a timeout). Refused here, with a message that says how to rewrite:
- a quantifier repeated without bound around a part that is itself repeated without bound,
  with nothing required between the repetitions (`(a+)+`, `(a*)*`, `(\\w+\\s?)+`): such a
  pattern can take exponential time on a near-miss (`"a" * 30 + "!"`);
- a repeat count above `MAX_REPEAT` (`a{99999999999}`), or nested counts that multiply to
  more than `MAX_REPEAT_PRODUCT` (`(a{1000}){1000}` takes seconds just to compile);
- a pattern longer than `MAX_PATTERN` characters;
- a character set that `re` warns may change meaning (`[[:alpha:]]`, `[a&&b]`): the `regex`
  module already reads some of these differently (`[[:alpha:]]` is a POSIX class there).
Patterns that backtrack badly in other ways (`(a|aa)+$`) pass; the search timeout bounds them.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache
from re import _parser  # type: ignore[attr-defined]
from typing import Any

import regex

MAX_PATTERN = 10_000
MAX_REPEAT = 1_000
MAX_REPEAT_PRODUCT = 100_000

_C = _parser  # the opcodes are names in re._constants, re-exported by the parser
_REPEATS = {_C.MAX_REPEAT, _C.MIN_REPEAT, getattr(_C, "POSSESSIVE_REPEAT", _C.MAX_REPEAT)}
_CHARS = {_C.LITERAL, _C.NOT_LITERAL, _C.ANY, _C.IN, _C.CATEGORY}
_UNBOUNDED = _C.MAXREPEAT


@lru_cache(maxsize=1024)
def regex_problem(pattern: str) -> str | None:
    """Why `pattern` is refused, or None when it is fine (cached: a reload checks the same
    patterns again)."""
    if len(pattern) > MAX_PATTERN:
        return f"regular expression longer than {MAX_PATTERN} characters"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            re.compile(pattern)
            tree = _parser.parse(pattern)
    except re.error as exc:
        return f"invalid regular expression: {exc}"
    except (OverflowError, RecursionError, ValueError) as exc:
        return f"invalid regular expression: {exc}"
    for warning in caught:
        if issubclass(warning.category, FutureWarning):  # `[[:alpha:]]`, `[a&&b]`, ...
            return (
                f"ambiguous character set ({str(warning.message).lower()}): escape the "
                "character to mean it literally, e.g. `[\\[]`"
            )
    problem = _walk(tree, 1)
    if problem:
        return problem
    try:
        regex.compile(pattern)
    except (regex.error, OverflowError, RecursionError, ValueError) as exc:
        return f"regular expression not supported: {exc}"
    return None


def _walk(sub: Any, product: int) -> str | None:
    for op, av in sub:
        found: str | None = None
        if op in _REPEATS:
            low, high, body = av
            for count in (low, high):
                if count != _UNBOUNDED and count > MAX_REPEAT:
                    return f"repeat count {count} is too large (at most {MAX_REPEAT})"
            size = product * (max(low, 1) if high == _UNBOUNDED else max(high, 1))
            if size > MAX_REPEAT_PRODUCT:
                return f"nested repeat counts multiply to {size} (at most {MAX_REPEAT_PRODUCT})"
            if high == _UNBOUNDED and _has_unbounded(body) and not _required(body):
                return (
                    "nested quantifier can take exponential time: a group repeated without "
                    "bound holds a part repeated without bound, with nothing required between "
                    "them (write `(a+)+` as `a+`, or require a separator inside the group)"
                )
            found = _walk(body, size)
        else:
            for child in _children(op, av):
                found = found or _walk(child, product)
        if found:
            return found
    return None


def _children(op: Any, av: Any) -> list[Any]:
    """The sub-patterns directly inside one item (groups, alternatives, lookarounds)."""
    if op == _C.SUBPATTERN:
        return [av[-1]]
    if op == _C.BRANCH:
        return list(av[1])
    if op in (_C.ASSERT, _C.ASSERT_NOT):
        return [av[1]]
    if op == getattr(_C, "ATOMIC_GROUP", None):
        return [av]
    if op == _C.GROUPREF_EXISTS:
        return [p for p in av[1:] if p is not None]
    return []


def _has_unbounded(sub: Any) -> bool:
    for op, av in sub:
        if op in _REPEATS and (av[1] == _UNBOUNDED or _has_unbounded(av[2])):
            return True
        if op not in _REPEATS and any(_has_unbounded(c) for c in _children(op, av)):
            return True
    return False


def _required(sub: Any) -> bool:
    """Whether every match of `sub` must contain a character outside any unbounded repeat:
    a separator that keeps the repetitions of an enclosing quantifier apart."""
    for op, av in sub:
        if op in _CHARS:
            return True
        if op == _C.SUBPATTERN and _required(av[-1]):
            return True
        if op == _C.BRANCH and all(_required(alt) for alt in av[1]):
            return True
        if op in _REPEATS and av[0] >= 1 and av[1] != _UNBOUNDED and _required(av[2]):
            return True
    return False
