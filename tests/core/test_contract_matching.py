"""Contract "Matching: `when`": each operator at its edges, and what a missing or mistyped
value satisfies. Every case is one rule set replayed or one clause asked of the matcher."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from leadrules.engine.core import conditions
from leadrules.engine.core.conditions import regex_timeouts
from leadrules.engine.core.events import normalize
from leadrules.engine.core.matching import PythonMatcher, make_matcher
from leadrules.engine.core.ruleset import FieldCond, Match, Op
from leadrules.engine.errors import PatternTimeout
from tests.scenario import at, identify, page, pick, run, track


def event(kind: str = "track", name: str | None = None, **fields: Any) -> Any:
    """A track event (named `name`, else E) or a page (with the page name `name`)."""
    raw: dict[str, Any] = {
        "type": kind,
        "userId": "u",
        "timestamp": "2026-01-01T00:00:00Z",
        "messageId": "m",
        **fields,
    }
    if kind == "track":
        raw["event"] = name or "E"
    elif name is not None:
        raw["name"] = name
    return normalize(raw)


def where(path: str, *ops: tuple[str, Any]) -> Match:
    return Match(
        kind="track",
        event="E",
        where=(FieldCond(tuple(path.split(".")), tuple(Op(n, a) for n, a in ops)),),
    )


def holds(match: Match, props: dict[str, Any], traits: dict[str, Any] | None = None) -> bool:
    return PythonMatcher([match]).match(event(properties=props), traits or {}) == [0]


# --- comparison operators at their bounds -----------------------------------------------


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("less_than", 10, False),
        ("less_than", 9.99, True),
        ("less_than", "10", False),
        ("less_than", "9.5", True),
        ("less_than", 11, False),
        ("at_most", 10, True),
        ("at_most", 10.01, False),
        ("at_most", 9, True),
        ("at_least", 10, True),
        ("at_least", 9.99, False),
        ("at_least", 11, True),
        ("more_than", 10, False),
        ("more_than", 10.01, True),
        ("more_than", "11", True),
        ("more_than", 9, False),
    ],
)
def test_matching_comparison_bounds_are_strict_or_inclusive_as_named(
    op: str, value: Any, expected: bool
) -> None:
    assert holds(where("n", (op, 10)), {"n": value}) is expected


@pytest.mark.parametrize(
    "value", [True, False, None, "ten", "1e3", "10.", ".5", "+5", "5 ", [5], {"n": 5}]
)
@pytest.mark.parametrize("op", ["less_than", "at_most", "at_least", "more_than"])
def test_matching_comparisons_hold_only_for_numbers_and_plain_decimal_text(
    op: str, value: Any
) -> None:
    bound = {"less_than": 1000, "at_most": 1000, "at_least": -1000, "more_than": -1000}[op]
    assert holds(where("n", (op, bound)), {"n": value}) is False


@pytest.mark.parametrize("text", ["-1.5", "250", "0", "-3"])
def test_matching_a_decimal_string_compares_as_its_number(text: str) -> None:
    number = float(text)
    assert holds(where("n", ("at_least", number)), {"n": text}) is True
    assert holds(where("n", ("more_than", number)), {"n": text}) is False
    assert holds(where("n", ("at_most", number)), {"n": text}) is True
    assert holds(where("n", ("less_than", number)), {"n": text}) is False


# --- contains, equals, in ---------------------------------------------------------------


def test_matching_contains_is_a_substring_test_on_a_string_property() -> None:
    assert holds(where("title", ("contains", "study")), {"title": "a case study"}) is True
    assert holds(where("title", ("contains", "Study")), {"title": "a case study"}) is False
    assert holds(where("title", ("contains", "x")), {"title": ""}) is False


def test_matching_contains_on_a_missing_field_or_a_number_matches_nothing() -> None:
    assert holds(where("title", ("contains", "1")), {}) is False
    assert holds(where("title", ("contains", "1")), {"title": 12}) is False
    assert holds(where("title", ("contains", 1)), {"title": 1}) is False
    assert holds(where("title", ("contains", 1)), {"title": "1"}) is False
    assert holds(where("title", ("contains", "a")), {"title": {"a": 1}}) is False
    assert holds(where("title", ("contains", "a")), {"title": None}) is False


def test_matching_contains_on_a_list_is_membership_with_booleans_apart() -> None:
    assert holds(where("tags", ("contains", "b")), {"tags": ["a", "b"]}) is True
    assert holds(where("tags", ("contains", "ab")), {"tags": ["a", "b"]}) is False
    assert holds(where("tags", ("contains", 1)), {"tags": [True]}) is False
    assert holds(where("tags", ("contains", True)), {"tags": [1]}) is False
    assert holds(where("tags", ("contains", True)), {"tags": [True]}) is True
    assert holds(where("tags", ("contains", "a")), {"tags": []}) is False


@pytest.mark.parametrize(
    ("arg", "value", "expected"),
    [
        (True, True, True),
        (False, False, True),
        (True, False, False),
        (False, True, False),
        (True, 1, False),
        (1, True, False),
        (0, False, False),
        (True, "true", False),
        (1, 1.0, True),
        ("a", "a", True),
        (None, None, True),
    ],
)
def test_matching_equals_compares_booleans_only_with_booleans(
    arg: Any, value: Any, expected: bool
) -> None:
    assert holds(where("trial", ("equals", arg)), {"trial": value}) is expected


def test_matching_two_booleans_compared_in_a_rule_file(tmp_path: Path) -> None:
    rules = """
    scoring:
      rules:
        - {id: trial, when: {event: Signed Up, where: {trial: true}}, points: 5}
        - {id: paid, when: {event: Signed Up, where: {trial: false}}, points: 50}
    """
    events = [
        track("a", at(0), "Signed Up", trial=True),
        track("b", at(0), "Signed Up", trial=False),
        track("c", at(0), "Signed Up", trial=1),
        track("d", at(0), "Signed Up", trial="true"),
        track("a", at(1), "Ping"),
        track("b", at(1), "Ping"),
        track("c", at(1), "Ping"),
        track("d", at(1), "Ping"),
    ]
    rules += """
    triggers:
      - {id: ping, when: {event: Ping}, then: [{notify: {channel: log, template: x}}]}
    """
    assert pick(run(tmp_path, rules, events), "prospect", "score") == [
        ("a", 5),
        ("b", 50),
        ("c", 0),
        ("d", 0),
    ]


def test_matching_in_needs_the_value_among_the_options() -> None:
    assert holds(where("plan", ("in", ("pro", "team"))), {"plan": "team"}) is True
    assert holds(where("plan", ("in", ("pro", "team"))), {"plan": "free"}) is False
    assert holds(where("plan", ("in", (1, 2))), {"plan": True}) is False
    assert holds(where("plan", ("in", (None,))), {}) is False
    assert holds(where("plan", ("in", (None,))), {"plan": None}) is True


def test_matching_equals_on_a_missing_field_is_false_even_for_null() -> None:
    assert holds(where("plan", ("equals", None)), {}) is False
    assert holds(where("plan", ("equals", None)), {"plan": None}) is True


# --- glob, matches, exists, not ---------------------------------------------------------


def test_matching_glob_and_matches_apply_to_strings_only() -> None:
    assert holds(where("path", ("glob", "1*")), {"path": 12}) is False
    assert holds(where("path", ("glob", "*")), {}) is False
    assert holds(where("path", ("glob", "/a/*")), {"path": "/a/b/c"}) is True
    assert holds(where("path", ("matches", "1")), {"path": 12}) is False
    assert holds(where("path", ("matches", "b")), {"path": "abc"}) is True
    assert holds(where("path", ("matches", "^b")), {"path": "abc"}) is False


def test_matching_exists_treats_null_as_absent() -> None:
    assert holds(where("x", ("exists", True)), {"x": None}) is False
    assert holds(where("x", ("exists", False)), {"x": None}) is True
    assert holds(where("x", ("exists", False)), {"x": 0}) is False
    assert holds(where("x", ("exists", True)), {"x": ""}) is True


def test_matching_not_holds_when_its_nested_condition_does_not() -> None:
    nested = (Op("at_least", 5), Op("at_most", 9))
    assert holds(where("n", ("not", nested)), {"n": 7}) is False
    assert holds(where("n", ("not", nested)), {"n": 10}) is True
    assert holds(where("n", ("not", nested)), {"n": 4}) is True
    assert holds(where("n", ("not", (Op("equals", 1),))), {"n": 1}) is False


def test_matching_every_operator_of_a_condition_must_hold() -> None:
    both = where("n", ("at_least", 1), ("at_most", 5))
    assert holds(both, {"n": 1}) is True
    assert holds(both, {"n": 0}) is False
    assert holds(both, {"n": 5}) is True
    assert holds(both, {"n": 6}) is False
    three = where("s", ("glob", "a*"), ("contains", "b"), ("matches", "c$"))
    assert holds(three, {"s": "abc"}) is True
    assert holds(three, {"s": "abd"}) is False
    assert holds(three, {"s": "xbc"}) is False
    assert holds(three, {"s": "ac"}) is False


# --- several conditions, paths, kinds ---------------------------------------------------


def test_matching_two_field_conditions_in_one_where_must_both_hold() -> None:
    match = Match(
        kind="track",
        event="E",
        where=(
            FieldCond(("plan",), (Op("equals", "pro"),)),
            FieldCond(("seats",), (Op("at_least", 10),)),
        ),
    )
    assert holds(match, {"plan": "pro", "seats": 10}) is True
    assert holds(match, {"plan": "pro", "seats": 9}) is False
    assert holds(match, {"plan": "free", "seats": 10}) is False
    assert holds(match, {}) is False


def test_matching_two_field_conditions_in_a_rule_file(tmp_path: Path) -> None:
    rules = """
    scoring:
      rules:
        - {id: big-pro, when: {event: Signed Up, where: {plan: pro, seats: {at_least: 10}}},
           points: 40}
    triggers:
      - {id: ping, when: {event: Ping}, then: [{notify: {channel: log, template: x}}]}
    """
    events = [
        track("a", at(0), "Signed Up", plan="pro", seats=12),
        track("b", at(0), "Signed Up", plan="pro", seats=2),
        track("c", at(0), "Signed Up", plan="free", seats=12),
        *(track(who, at(1), "Ping") for who in "abc"),
    ]
    assert pick(run(tmp_path, rules, events), "prospect", "score") == [
        ("a", 40),
        ("b", 0),
        ("c", 0),
    ]


def test_matching_dotted_paths_need_every_step_to_be_an_object() -> None:
    deep = where("a.b.c", ("equals", 1))
    assert holds(deep, {"a": {"b": {"c": 1}}}) is True
    assert holds(deep, {"a": {"b": {"c": 2}}}) is False
    assert holds(deep, {"a": {"b": 1}}) is False
    assert holds(deep, {"a": {"c": 1}}) is False
    assert holds(deep, {"a.b.c": 1}) is False
    assert holds(where("a.b", ("exists", False)), {"a": [1]}) is True


def test_matching_page_conditions_on_properties_and_name_must_all_hold() -> None:
    match = Match(
        kind="page",
        page=(
            FieldCond(("path",), (Op("glob", "/pricing*"),)),
            FieldCond(("name",), (Op("equals", "Pricing"),)),
            FieldCond(("title",), (Op("contains", "Plans"),)),
        ),
    )
    matcher = PythonMatcher([match])
    ok = {"path": "/pricing", "title": "Our Plans"}
    assert matcher.match(event("page", name="Pricing", properties=ok), {}) == [0]
    assert matcher.match(event("page", name="Blog", properties=ok), {}) == []
    assert matcher.match(event("page", properties=ok), {}) == []
    bad_path = {"path": "/blog", "title": "Our Plans"}
    assert matcher.match(event("page", name="Pricing", properties=bad_path), {}) == []
    bad_title = {"path": "/pricing", "title": "Blog"}
    assert matcher.match(event("page", name="Pricing", properties=bad_title), {}) == []
    # `name` is the message's own name, not a property called name
    props_name = {**ok, "name": "Pricing"}
    assert matcher.match(event("page", properties=props_name), {}) == []


def test_matching_a_page_name_condition_alone_and_a_missing_name() -> None:
    unnamed = Match(kind="page", page=(FieldCond(("name",), (Op("exists", False),)),))
    named = Match(kind="page", page=(FieldCond(("name",), (Op("exists", True),)),))
    matcher = PythonMatcher([unnamed, named])
    assert matcher.match(event("page", properties={}), {}) == [0]
    assert matcher.match(event("page", name="Home", properties={}), {}) == [1]


def test_matching_event_page_and_trait_clauses_each_keep_their_kind() -> None:
    on_track = Match(kind="track", event="E")
    on_page = Match(kind="page")
    on_traits = Match(kind=None, trait=(FieldCond(("plan",), (Op("equals", "pro"),)),))
    both = Match(kind="track", event="E", trait=(FieldCond(("plan",), (Op("equals", "pro"),)),))
    matcher = PythonMatcher([on_track, on_page, on_traits, both])
    pro = {"plan": "pro"}
    assert matcher.match(event(), pro) == [0, 2, 3]
    assert matcher.match(event(), {}) == [0]
    assert matcher.match(event(name="F"), pro) == [2]
    assert matcher.match(event("page", properties={}), pro) == [1, 2]
    assert matcher.match(event("identify", traits={"plan": "pro"}), pro) == [2]
    assert matcher.match(event("identify", traits={"plan": "pro"}), {}) == []


@pytest.mark.parametrize("name", ["python", "durable"])
def test_matching_results_come_in_ascending_rule_order(name: str) -> None:
    matches = [
        Match(kind="page"),
        Match(kind="page", trait=(FieldCond(("t",), (Op("equals", 1),)),)),
        Match(kind="page", where=(FieldCond(("x",), (Op("equals", 1),)),)),
        Match(kind=None, trait=(FieldCond(("t",), (Op("equals", 1),)),)),
        Match(kind="page", trait=(FieldCond(("t",), (Op("equals", 1),)),)),
        Match(kind="page"),
    ]
    matcher = make_matcher(name, matches)
    assert matcher.match(event("page", properties={"x": 1}), {"t": 1}) == [0, 1, 2, 3, 4, 5]
    assert matcher.match(event("page", properties={"x": 2}), {"t": 1}) == [0, 1, 3, 4, 5]
    assert matcher.match(event("page", properties={"x": 1}), {}) == [0, 2, 5]


def test_matching_the_answer_for_the_same_values_never_depends_on_earlier_events() -> None:
    match = where("plan", ("equals", "pro"))
    trait_match = Match(kind="track", event="E", trait=(FieldCond(("t",), (Op("equals", 1),)),))
    matcher = PythonMatcher([match, trait_match])
    for _ in range(3):
        assert matcher.match(event(properties={"plan": "pro"}), {}) == [0]
        assert matcher.match(event(properties={"plan": "free"}), {}) == []
        assert matcher.match(event(properties={"plan": "pro"}), {"t": 1}) == [0, 1]
        assert matcher.match(event(properties={"plan": "free"}), {"t": 1}) == [1]
        assert matcher.match(event(properties={"plan": ["pro"]}), {}) == []
        assert matcher.match(event(properties={}), {}) == []


def test_matching_pages_told_apart_by_name_are_not_confused_by_the_cache() -> None:
    match = Match(kind="page", page=(FieldCond(("name",), (Op("equals", "Pricing"),)),))
    matcher = PythonMatcher([match])
    for _ in range(2):
        assert matcher.match(event("page", name="Pricing", properties={}), {}) == [0]
        assert matcher.match(event("page", name="Blog", properties={}), {}) == []


def test_matching_a_long_run_of_distinct_values_keeps_answers_right() -> None:
    matcher = PythonMatcher([where("n", ("at_least", 100))])
    for n in range(0, 60_000, 997):
        assert matcher.match(event(properties={"n": n}), {}) == ([0] if n >= 100 else [])


def test_matching_an_unknown_matcher_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown matcher 'fast'"):
        make_matcher("fast", [])


def test_matching_identify_traits_take_part_in_trait_clauses(tmp_path: Path) -> None:
    rules = """
    scoring:
      rules:
        - {id: visit-as-vp, when: {page: {}, trait: {title: VP}}, points: 7}
    triggers:
      - {id: ping, when: {event: Ping}, then: [{notify: {channel: log, template: x}}]}
    """
    events = [
        page("u", at(0)),
        identify("u", at(1), title="VP"),
        page("u", at(2)),
        track("u", at(3), "Ping"),
    ]
    assert pick(run(tmp_path, rules, events), "score") == [(7,)]


def test_matching_a_search_stopped_by_its_time_bound_is_an_error_not_a_silent_no_match() -> None:
    slow = where("s", ("matches", "(a|aa)+$"))
    before = regex_timeouts()
    with pytest.raises(PatternTimeout):
        holds(slow, {"s": "a" * 5000 + "b"})
    assert regex_timeouts() == before + 1
    assert holds(slow, {"s": "aaa"}) is True
    assert regex_timeouts() == before + 1


def test_matching_a_search_answer_is_remembered_for_short_values_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    searched: list[str] = []

    class Counting:
        def search(self, value: str, timeout: float) -> re.Match[str] | None:
            searched.append(value)
            return re.search("x", value)

    monkeypatch.setattr(conditions, "_regex", lambda pattern: Counting())
    found = conditions._searcher("x")
    assert [found("axb"), found("axb"), found("ab"), found("ab"), found(7)] == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert searched == ["axb", "ab"]
    edge, longer = "x" * conditions.SEARCH_CACHE_CHARS, "x" * (conditions.SEARCH_CACHE_CHARS + 1)
    assert [found(edge), found(edge), found(longer), found(longer)] == [True] * 4
    assert searched == ["axb", "ab", edge, longer, longer]
    # at most SEARCH_CACHE_SIZE answers: the next new value starts the memory afresh
    monkeypatch.setattr(conditions, "SEARCH_CACHE_SIZE", 4)
    searched.clear()
    assert found("c") is False  # the fourth answer held
    assert found("axb") is True  # still held
    assert found("d") is False  # a fifth: the answers are forgotten, then "d" held
    assert found("axb") is True
    assert searched == ["c", "d", "axb"]


def test_matching_a_dotted_page_property_ending_in_name_is_a_property() -> None:
    match = Match(kind="page", page=(FieldCond(("search", "name"), (Op("equals", "q"),)),))
    matcher = PythonMatcher([match])
    assert matcher.match(event("page", properties={"search": {"name": "q"}}), {}) == [0]
    assert matcher.match(event("page", name="q", properties={}), {}) == []
