"""Contract "Matching: `when`": operators, paths, and the two matchers agreeing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadrules.engine.core.events import normalize
from leadrules.engine.core.matching import PythonMatcher, make_matcher
from leadrules.engine.core.ruleset import FieldCond, Match, Op


def track(props: dict[str, Any], event: str = "E") -> Any:
    return normalize(
        {
            "type": "track",
            "event": event,
            "userId": "u",
            "timestamp": "2026-01-01T00:00:00Z",
            "messageId": "m",
            "properties": props,
        }
    )


def where(path: str, *ops: tuple[str, Any]) -> Match:
    return Match(
        kind="track",
        event="E",
        where=(FieldCond(tuple(path.split(".")), tuple(Op(n, a) for n, a in ops)),),
    )


def holds(match: Match, props: dict[str, Any], traits: dict[str, Any] | None = None) -> bool:
    return PythonMatcher([match]).match(track(props), traits or {}) == [0]


@pytest.mark.parametrize(
    ("ops", "value", "expected"),
    [
        ((("equals", "a"),), "a", True),
        ((("equals", "a"),), "b", False),
        ((("equals", 1),), True, False),  # booleans equal only booleans
        ((("in", ("a", "b")),), "b", True),
        ((("in", ("a", "b")),), "c", False),
        ((("glob", "/pricing*"),), "/pricing/enterprise", True),  # * also matches /
        ((("glob", "/pricing?"),), "/pricings", True),
        ((("glob", "/Pricing*"),), "/pricing", False),  # case-sensitive
        ((("matches", r"(?i)\b(vp|director)\b"),), "Sales Director", True),  # search, Python regex
        ((("matches", "^vp$"),), "svp", False),
        ((("contains", "case"),), "a case study", True),
        ((("contains", "x"),), ["x", "y"], True),
        ((("contains", "z"),), ["x", "y"], False),
        ((("at_least", 100),), 100, True),
        ((("at_least", 100),), "250", True),  # numeric strings compare as numbers
        ((("at_least", 100),), "many", False),
        ((("at_most", 10),), 10.0, True),
        ((("more_than", 10),), 10, False),
        ((("less_than", 10),), 9, True),
        ((("at_least", 1), ("at_most", 5)), 3, True),  # every op must hold
        ((("at_least", 1), ("at_most", 5)), 6, False),
        ((("not", (Op("equals", "a"),)),), "b", True),
        ((("not", (Op("in", ("a", "b")),)),), "a", False),
    ],
)
def test_operators(ops: tuple[tuple[str, Any], ...], value: Any, expected: bool) -> None:
    assert holds(where("x", *ops), {"x": value}) is expected


def test_a_missing_field_satisfies_only_exists_false_and_not() -> None:
    assert holds(where("x", ("equals", "a")), {}) is False
    assert holds(where("x", ("at_least", 0)), {}) is False
    assert holds(where("x", ("exists", False)), {}) is True
    assert holds(where("x", ("exists", True)), {}) is False
    assert holds(where("x", ("exists", True)), {"x": 0}) is True
    assert holds(where("x", ("not", (Op("equals", "a"),))), {}) is True


def test_dotted_paths_reach_into_nested_objects() -> None:
    assert holds(where("company.size", ("at_least", 200)), {"company": {"size": 500}}) is True
    assert holds(where("company.size", ("at_least", 200)), {"company": "acme"}) is False


def test_event_matches_the_track_event_name_exactly() -> None:
    match = Match(kind="track", event="Video Watched")
    matcher = PythonMatcher([match])
    assert matcher.match(track({}, "Video Watched"), {}) == [0]
    assert matcher.match(track({}, "video watched"), {}) == []


def test_page_conditions_read_properties_and_name() -> None:
    page = normalize(
        {
            "type": "page",
            "userId": "u",
            "timestamp": "2026-01-01T00:00:00Z",
            "messageId": "m",
            "name": "Pricing",
            "properties": {"path": "/pricing", "title": "Plans"},
        }
    )
    any_page = Match(kind="page")
    by_name = Match(kind="page", page=(FieldCond(("name",), (Op("equals", "Pricing"),)),))
    by_title = Match(kind="page", page=(FieldCond(("title",), (Op("glob", "Plan*"),)),))
    other = Match(kind="page", page=(FieldCond(("path",), (Op("equals", "/blog"),)),))
    assert PythonMatcher([any_page, by_name, by_title, other]).match(page, {}) == [0, 1, 2]
    assert PythonMatcher([any_page]).match(track({}), {}) == []


def test_trait_conditions_use_the_current_traits() -> None:
    match = Match(kind="track", event="E", trait=(FieldCond(("title",), (Op("matches", "VP"),)),))
    assert holds(match, {}, {"title": "VP Sales"}) is True
    assert holds(match, {}, {"title": "Engineer"}) is False


def test_every_rule_sees_every_event_with_durable_rules() -> None:
    matches = [
        Match(kind="track", event="E"),
        where("x", ("equals", "a")),
        where("x", ("exists", True)),
    ]
    assert make_matcher("durable", matches).match(track({"x": "a"}), {}) == [0, 1, 2]
    # and again: nothing was consumed or left behind
    assert make_matcher("durable", matches).match(track({"x": "a"}), {}) == [0, 1, 2]


# --- the durable-rules matcher agrees with the Python matcher ---------------------------

_keys = st.sampled_from(["a", "b", "size", "id", "c-d"])
_scalars = st.one_of(
    st.sampled_from(["x", "y", "/pricing", "/pricing/a", "VP Sales", "250", "-3", "1.5", ""]),
    st.integers(-300, 300),
    st.floats(-300, 300, allow_nan=False),
    st.booleans(),
    st.none(),
)
_values = st.one_of(
    _scalars, st.lists(_scalars, max_size=3), st.dictionaries(_keys, _scalars, max_size=3)
)


def _op() -> st.SearchStrategy[Op]:
    number = st.one_of(st.integers(-300, 300), st.floats(-300, 300, allow_nan=False))
    return st.one_of(
        st.builds(Op, st.just("equals"), _scalars),
        st.builds(Op, st.just("in"), st.lists(_scalars, max_size=3).map(tuple)),
        st.builds(Op, st.just("glob"), st.sampled_from(["/pricing*", "*", "?", "x*", "V* S*"])),
        st.builds(Op, st.just("matches"), st.sampled_from(["^x", "(?i)vp", r"\d+", "a|b", ""])),
        st.builds(Op, st.just("contains"), _scalars),
        st.builds(Op, st.sampled_from(["at_least", "at_most", "more_than", "less_than"]), number),
        st.builds(Op, st.just("exists"), st.booleans()),
        st.builds(
            Op,
            st.just("not"),
            st.lists(st.builds(Op, st.just("equals"), _scalars), min_size=1, max_size=2).map(tuple),
        ),
    )


_conds = st.lists(
    st.builds(
        FieldCond,
        st.lists(_keys, min_size=1, max_size=2).map(tuple),
        st.lists(_op(), min_size=1, max_size=2).map(tuple),
    ),
    max_size=2,
).map(tuple)
_matches = st.one_of(
    st.builds(Match, st.just("track"), st.sampled_from(["E", "F"]), st.just(()), _conds, _conds),
    st.builds(Match, st.just("page"), st.none(), _conds, st.just(()), _conds),
    st.builds(Match, st.none(), st.none(), st.just(()), st.just(()), _conds),
)
_events = st.builds(
    lambda kind, name, props, pname: normalize(
        {
            "type": kind,
            "event": name,
            "name": pname,
            "userId": "u",
            "timestamp": "2026-01-01T00:00:00Z",
            "messageId": "m",
            "properties": props,
        }
    ),
    st.sampled_from(["track", "page", "identify"]),
    st.sampled_from(["E", "F"]),
    st.dictionaries(_keys, _values, max_size=4),
    st.sampled_from([None, "x", "Pricing"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_matches, min_size=1, max_size=6),
    st.lists(_events, min_size=1, max_size=5),
    st.dictionaries(_keys, _values, max_size=4),
)
def test_durable_and_python_matchers_agree(
    matches: list[Match], events: list[Any], traits: dict[str, Any]
) -> None:
    python = make_matcher("python", matches)
    durable = make_matcher("durable", matches)
    for event in events:
        assert durable.match(event, traits) == python.match(event, traits)


def test_cached_results_never_change_an_answer() -> None:
    pricing = Match(
        kind="page",
        page=(FieldCond(("path",), (Op("glob", "/pricing*"),)),),
        where=(FieldCond(("plan",), (Op("equals", "pro"),)),),
    )
    senior = Match(kind="page", trait=(FieldCond(("title",), (Op("equals", "VP"),)),))
    matcher = PythonMatcher([pricing, senior])

    def page(props: dict[str, Any]) -> Any:
        return normalize(
            {
                "type": "page",
                "userId": "u",
                "timestamp": "2026-01-01T00:00:00Z",
                "messageId": "m",
                "properties": props,
            }
        )

    for _ in range(2):
        assert matcher.match(page({"path": "/pricing", "plan": "pro"}), {"title": "VP"}) == [0, 1]
        assert matcher.match(page({"path": "/pricing", "plan": "free"}), {"title": "VP"}) == [1]
        assert matcher.match(page({"path": "/pricing", "plan": "pro"}), {}) == [0]
        assert matcher.match(page({"path": ["/pricing"], "plan": "pro"}), {}) == []
