"""Which `when` clauses does an event satisfy?

The evaluator hands a matcher every event-bearing `Match` of the rule set (scoring rules,
trigger `when`s and `unless`es, sequence `exit_when` entries) once, and then asks, for each
event and the prospect's current traits, for the indices of all the matches it satisfies.
Every match sees every event: nothing is consumed.

Two implementations stand behind the `Matcher` interface:
- `PythonMatcher` (default): the conditions compiled to closures, indexed by event name.
- `DurableMatcher` (`--matcher durable`, in `core/durable_matcher.py`): the same clauses
  compiled to a durable-rules ruleset. A property-based test proves the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from leadrules.engine.core.conditions import MISSING, lookup
from leadrules.engine.core.events import Event
from leadrules.engine.core.predicates import EventPredicate, Matcher, event_predicate
from leadrules.engine.core.ruleset import Match


class _Group:
    """The clauses one kind of event can meet (one event name, or pages), split into those
    that read only the event — whose result is cached by the values they read — and those
    that also read traits, which are evaluated every time."""

    CACHE_LIMIT = 50_000

    def __init__(self, entries: list[tuple[int, Match, EventPredicate]], page: bool) -> None:
        self.plain = [(i, test) for i, m, test in entries if not m.trait]
        self.with_traits = [(i, test) for i, m, test in entries if m.trait]
        paths: set[tuple[str, ...]] = set()
        for _, match, _ in entries:
            paths.update(c.path for c in match.page if c.path != ("name",))
            paths.update(c.path for c in match.where)
        self.paths = sorted(paths)
        self.reads_name = page and any(c.path == ("name",) for _, m, _ in entries for c in m.page)
        self.cache: dict[tuple[Any, ...], list[int]] = {}

    def _key(self, event: Event) -> tuple[Any, ...]:
        props = event.properties
        key = tuple(
            props.get(p[0], MISSING) if len(p) == 1 else lookup(props, p) for p in self.paths
        )
        if self.reads_name:
            key += (event.name,)
        # True == 1 == 1.0 and they hash alike, but a condition tells a boolean from a number
        # (`where: {trial: true}` does not match 1): the types are part of the key.
        return key + tuple(map(type, key))

    def match(self, event: Event, traits: dict[str, Any]) -> list[int]:
        found: list[int] | None = None
        if self.plain:
            key = self._key(event)
            cacheable = True
            try:
                found = self.cache.get(key)
            except TypeError:
                cacheable = False  # a list or object value: evaluate without the cache
            if found is None:
                found = [i for i, test in self.plain if test(event, traits)]
                if cacheable:
                    if len(self.cache) >= self.CACHE_LIMIT:
                        self.cache.clear()
                    self.cache[key] = found
        if not self.with_traits:
            return found or []
        extra = [i for i, test in self.with_traits if test(event, traits)]
        if not found:
            return extra
        return sorted(found + extra) if extra else found


class PythonMatcher:
    """Matches compiled to closures, grouped by event name (and pages) so an event only
    meets the clauses that could match it."""

    name = "python"

    def __init__(self, matches: Sequence[Match]) -> None:
        by_event: dict[str, list[tuple[int, Match, EventPredicate]]] = {}
        pages: list[tuple[int, Match, EventPredicate]] = []
        self._any: list[tuple[int, EventPredicate]] = []
        for index, match in enumerate(matches):
            test = event_predicate(match)
            if match.kind == "track" and match.event is not None:
                by_event.setdefault(match.event, []).append((index, match, test))
            elif match.kind == "page":
                pages.append((index, match, test))
            else:
                self._any.append((index, test))
        self._by_event = {name: _Group(entries, False) for name, entries in by_event.items()}
        self._page = _Group(pages, True)

    def match(self, event: Event, traits: dict[str, Any]) -> list[int]:
        kind = event.type
        if kind == "page":
            found = self._page.match(event, traits)
        elif kind == "track":
            group = self._by_event.get(event.event or "")
            found = group.match(event, traits) if group is not None else []
        else:
            found = []
        if self._any:
            found = sorted(found + [i for i, test in self._any if test(event, traits)])
        return found


def make_matcher(name: str, matches: Sequence[Match]) -> Matcher:
    """The matcher called `name` (`python` or `durable`) over `matches`."""
    if name == "python":
        return PythonMatcher(matches)
    if name == "durable":
        from leadrules.engine.core.durable_matcher import DurableMatcher

        return DurableMatcher(matches)
    raise ValueError(f"unknown matcher {name!r} (choose python or durable)")
