"""Which `when` clauses does an event satisfy?

The evaluator hands a matcher every event-bearing `Match` of the rule set (scoring rules,
trigger `when`s and `unless`es, sequence `exit_when` entries) once, and then asks, for each
event and the prospect's current traits, for the indices of all the matches it satisfies.
Every match sees every event: nothing is consumed.

Two implementations stand behind the `Matcher` interface:
- `PythonMatcher` (default): the conditions compiled to closures, indexed by event name.
- `DurableMatcher` (`--matcher durable`, in `engine.durable_matcher`): the same clauses
  compiled to a durable-rules ruleset. A property-based test proves the two agree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from engine.conditions import MISSING, compile_fields, compile_ops
from engine.events import Event
from engine.ruleset import FieldCond, Match

EventPredicate = Callable[[Event, dict[str, Any]], bool]


class Matcher(Protocol):
    def match(self, event: Event, traits: dict[str, Any]) -> list[int]:
        """Indices (into the matches given at construction) that `event` satisfies, ascending."""
        ...


def _page_predicate(conds: tuple[FieldCond, ...]) -> Callable[[Event], bool] | None:
    """Page conditions read `properties`, except `name`, the message's own page name."""
    on_props = tuple(c for c in conds if c.path[0] != "name")
    on_name = tuple(c for c in conds if c.path[0] == "name")
    props_test = compile_fields(on_props)
    name_tests = [compile_ops(c.ops) for c in on_name]
    if props_test is None and not name_tests:
        return None

    def test(event: Event) -> bool:
        if props_test is not None and not props_test(event.properties):
            return False
        name = MISSING if event.name is None else event.name
        return all(t(name) for t in name_tests)

    return test


def event_predicate(match: Match) -> EventPredicate:
    """The whole of a `Match` as one predicate on (event, traits)."""
    kind, event_name = match.kind, match.event
    page_test = _page_predicate(match.page)
    where_test = compile_fields(match.where)
    trait_test = compile_fields(match.trait)

    def test(event: Event, traits: dict[str, Any]) -> bool:
        if kind is not None and event.type != kind:
            return False
        if event_name is not None and event.event != event_name:
            return False
        if page_test is not None and not page_test(event):
            return False
        if where_test is not None and not where_test(event.properties):
            return False
        return trait_test is None or trait_test(traits)

    return test


def trait_predicate(match: Match) -> Callable[[dict[str, Any]], bool]:
    """A fit rule's conditions as a predicate on traits alone."""
    test = compile_fields(match.trait)
    return (lambda traits: True) if test is None else test


class PythonMatcher:
    """Matches compiled to closures, looked up by (type, event name) so an event only meets
    the clauses that could match it."""

    name = "python"

    def __init__(self, matches: Sequence[Match]) -> None:
        self._by_event: dict[str, list[tuple[int, EventPredicate]]] = {}
        self._page: list[tuple[int, EventPredicate]] = []
        self._any: list[tuple[int, EventPredicate]] = []
        for index, match in enumerate(matches):
            entry = (index, event_predicate(match))
            if match.kind == "track" and match.event is not None:
                self._by_event.setdefault(match.event, []).append(entry)
            elif match.kind == "page":
                self._page.append(entry)
            else:
                self._any.append(entry)

    def match(self, event: Event, traits: dict[str, Any]) -> list[int]:
        if event.type == "track":
            candidates = self._by_event.get(event.event or "", ())
        elif event.type == "page":
            candidates = self._page
        else:
            candidates = ()
        found = [i for i, test in candidates if test(event, traits)]
        if self._any:
            found.extend(i for i, test in self._any if test(event, traits))
            found.sort()
        return found


def make_matcher(name: str, matches: Sequence[Match]) -> Matcher:
    """The matcher called `name` (`python` or `durable`) over `matches`."""
    if name == "python":
        return PythonMatcher(matches)
    if name == "durable":
        from engine.durable_matcher import DurableMatcher

        return DurableMatcher(matches)
    raise ValueError(f"unknown matcher {name!r} (choose python or durable)")
