"""Predicates: a `when` clause compiled to a plain function of (event, traits), and the
`Matcher` interface both matchers implement. The contract's meaning of a clause lives here;
the matchers only decide which predicates to run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from leadrules.engine.core.conditions import MISSING, compile_fields, compile_ops
from leadrules.engine.core.events import Event
from leadrules.engine.core.ruleset import FieldCond, Match

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
