"""Contract "Scoring": a fit rule (only `trait`) counts its points while the prospect's traits
satisfy it. A prospect starts with no traits, which some fit rules are satisfied by (`exists:
false`, `not`, or no condition at all): those count from the prospect's first event, not
only once an `identify` arrives, and like any score they can make an mql (contract
"Lifecycle": a score reaching `mql_threshold` from below)."""

from __future__ import annotations

from pathlib import Path

from tests.core.contract_support import PING, Replayed
from tests.scenario import at, identify, page, pick, run, track

FIT = """
    scoring:
      rules:
        - {id: no-title, when: {trait: {title: {exists: false}}}, points: 5}
        - {id: not-a-student, when: {trait: {role: {not: {equals: student}}}}, points: 7}
        - {id: anyone, when: {trait: {}}, points: 11}
        - {id: vp, when: {trait: {title: VP}}, points: 20}
    """


def test_scoring_fit_rules_met_by_no_traits_count_from_the_first_event(tmp_path: Path) -> None:
    events = [
        track("u1", at(0), "Ping"),
        identify("u1", at(1), title="VP"),  # no-title stops counting, vp starts
        track("u1", at(1, 1), "Ping"),
        identify("u1", at(2), role="student"),
        track("u1", at(2, 1), "Ping"),
        page("u2", at(0)),  # a prospect whose first event is a page
        track("u2", at(0, 1), "Ping"),
    ]
    replayed = Replayed(tmp_path, FIT + PING, events)
    assert pick(replayed.records, "at", "prospect", "score") == [
        (at(0), "u1", 23),
        (at(0, 1), "u2", 23),
        (at(1, 1), "u1", 38),
        (at(2, 1), "u1", 31),
    ]
    reasons = replayed.explain("u2", at(1))["contributions"]
    assert [(c["rule"], c["points"], c["since"]) for c in reasons] == [
        ("no-title", 5, at(0)),
        ("not-a-student", 7, at(0)),
        ("anyone", 11, at(0)),
    ]


def test_scoring_fit_points_of_a_new_prospect_can_make_an_mql_at_its_first_event(
    tmp_path: Path,
) -> None:
    rules = (
        FIT
        + """
    lifecycle:
      mql_threshold: 20
      on_mql:
        - notify: {channel: sales, template: new-mql}
    """
    )
    records = run(tmp_path, rules, [page("u1", at(0)), page("u1", at(1))])
    assert pick(records, "at", "action", "rule", "score") == [
        (at(0), "set_stage", "lifecycle.mql", 23),
        (at(0), "notify", "lifecycle.mql", 23),
    ]
