"""The durable-rules matcher: the only module that imports durable-rules.

How it is used, given what durable-rules 2.0.28 does (see docs/matching.md):
- each event becomes a fact that is asserted and at once retracted, which fires *every*
  matching rule once (a posted event would be consumed by the first rule only);
- the ruleset holds no per-prospect state and no timers: one fact at a time, always retracted;
- each `Match` compiles to one rule whose condition durable-rules can evaluate exactly or
  more loosely (event type and name, string equality, numeric comparisons). durable-rules'
  dialect differs from the contract's in places (its regexes are anchored, it compares
  numeric strings as numbers, it has no `glob` or `not`), so every rule it fires is then
  confirmed by the contract's own predicate. A condition is translated only where
  durable-rules can never reject what the contract accepts; the rest is left to the check;
- a fact durable-rules cannot parse (it rejects some numbers, such as denormal floats) is
  decided by the contract's predicates alone, so the matcher never fails on a valid event.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from typing import Any

from durable.engine import MessageNotHandledException
from durable.lang import assert_fact, m, retract_fact, ruleset, when_all

from leadrules.engine.core.events import Event
from leadrules.engine.core.predicates import EventPredicate, event_predicate
from leadrules.engine.core.ruleset import FieldCond, Match

_counter = itertools.count(1)
_COMPARE = {"at_least": ">=", "at_most": "<=", "more_than": ">", "less_than": "<"}


def _safe_segment(name: str) -> bool:
    # A rule on a field called `id` hung durable-rules; keep clear of it and odd names.
    return name != "id" and name.isidentifier() and not name.startswith("_")


def _field(root: Any, path: tuple[str, ...]) -> Any:
    node = root
    for segment in path:
        node = getattr(node, segment)
    return node


def _translate(root: Any, cond: FieldCond) -> list[Any]:
    """durable-rules expressions implied by one field condition (possibly none)."""
    if not all(_safe_segment(s) for s in cond.path):
        return []
    out = []
    for op in cond.ops:
        arg = op.arg
        if op.name == "equals" and isinstance(arg, str):
            out.append(_field(root, cond.path) == arg)
        elif (
            op.name in _COMPARE
            and isinstance(arg, (int, float))
            and not isinstance(arg, bool)
            and abs(arg) < 2**52
        ):
            target = _field(root, cond.path)
            symbol = _COMPARE[op.name]
            if symbol == ">=":
                out.append(target >= arg)
            elif symbol == "<=":
                out.append(target <= arg)
            elif symbol == ">":
                out.append(target > arg)
            else:
                out.append(target < arg)
    return out


def _condition(match: Match) -> Any:
    """The durable-rules condition for one match: type and name, plus what translates."""
    parts: list[Any] = []
    if match.kind == "track":
        parts.append(m.k == "track")
        if match.event is not None:
            parts.append(m.e == match.event)
    elif match.kind == "page":
        parts.append(m.k == "page")
    else:
        parts.append(+m.k)
    for cond in match.page:
        if cond.path == ("name",):
            parts.extend(_translate(m, FieldCond(("n",), cond.ops)))
        else:
            parts.extend(_translate(m.p, cond))
    for cond in match.where:
        parts.extend(_translate(m.p, cond))
    for cond in match.trait:
        parts.extend(_translate(m.tr, cond))
    condition = parts[0]
    for part in parts[1:]:
        condition = condition & part
    return condition


class DurableMatcher:
    """Matches compiled to one durable-rules ruleset; every firing is confirmed in Python."""

    name = "durable"

    def __init__(self, matches: Sequence[Match]) -> None:
        self._ruleset = f"leadrules_{next(_counter)}"
        self._checks: list[EventPredicate] = [event_predicate(x) for x in matches]
        self._hits: list[int] = []
        self._lock = threading.Lock()
        with ruleset(self._ruleset):
            for index, match in enumerate(matches):
                self._add_rule(index, match)
            # A rule that every fact satisfies keeps durable-rules from raising
            # MessageNotHandledException for events no clause is about.
            when_all(+m.k)(lambda c: None)

    def _add_rule(self, index: int, match: Match) -> None:
        hits = self._hits

        def fired(c: Any) -> None:
            hits.append(index)

        fired.__name__ = f"match_{index}"
        when_all(_condition(match))(fired)

    def match(self, event: Event, traits: dict[str, Any]) -> list[int]:
        fact: dict[str, Any] = {"k": event.type, "p": event.properties, "tr": traits}
        if event.event is not None:
            fact["e"] = event.event
        if event.name is not None:
            fact["n"] = event.name
        with self._lock:
            self._hits.clear()
            try:
                assert_fact(self._ruleset, fact)
                retract_fact(self._ruleset, fact)
            except MessageNotHandledException:
                pass
            except Exception:  # durable_rules_engine.error: a value its JSON parser rejects
                # (seen: denormal floats such as 5e-324). Decide with the contract's predicates.
                return [i for i, check in enumerate(self._checks) if check(event, traits)]
            fired = sorted(set(self._hits))
        return [i for i in fired if self._checks[i](event, traits)]
