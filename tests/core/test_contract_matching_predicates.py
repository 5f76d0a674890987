"""Contract "Matching: `when`" through the durable-rules matcher's own fallback: an event
holding a value durable-rules cannot take (a denormal float such as 5e-324) is decided by
the contract's predicates alone, so they must hold every clause by themselves: the kind, the
exact event name, `where` and `trait`."""

from __future__ import annotations

from typing import Any

from leadrules.engine.core.events import normalize
from leadrules.engine.core.matching import make_matcher
from leadrules.engine.core.ruleset import FieldCond, Match, Op

DENORMAL = 5e-324  # durable-rules' parser refuses it (the matcher falls back, see its code)

MATCHES = [
    Match(kind="track", event="Demo Requested"),  # 0
    Match(kind="track", event="Demo"),  # 1: another name, a prefix of the first
    Match(kind="page"),  # 2: any page
    Match(
        kind="track", event="Demo Requested", where=(FieldCond(("plan",), (Op("equals", "pro"),)),)
    ),  # 3
    Match(
        kind="track", event="Demo Requested", trait=(FieldCond(("title",), (Op("equals", "VP"),)),)
    ),  # 4
]


def message(kind: str, **fields: Any) -> Any:
    return normalize(
        {
            "type": kind,
            "userId": "u1",
            "timestamp": "2026-01-01T00:00:00Z",
            "messageId": "m1",
            **fields,
        }
    )


def test_matching_event_name_equals_exactly_when_durable_rules_falls_back() -> None:
    durable, python = make_matcher("durable", MATCHES), make_matcher("python", MATCHES)
    demo = message("track", event="Demo Requested", properties={"x": DENORMAL, "plan": "pro"})
    for matcher in (durable, python):
        assert matcher.match(demo, {"title": "VP"}) == [0, 3, 4]
        assert matcher.match(demo, {"title": "Intern"}) == [0, 3]
    other = message("track", event="Demo Requested!", properties={"x": DENORMAL})
    assert durable.match(other, {"title": "VP"}) == python.match(other, {"title": "VP"}) == []


def test_matching_a_page_clause_needs_a_page_when_durable_rules_falls_back() -> None:
    durable, python = make_matcher("durable", MATCHES), make_matcher("python", MATCHES)
    visit = message("page", properties={"x": DENORMAL})
    identify = message("identify", traits={"x": DENORMAL})
    for matcher in (durable, python):
        assert matcher.match(visit, {}) == [2]
        assert matcher.match(identify, {"x": DENORMAL}) == []
