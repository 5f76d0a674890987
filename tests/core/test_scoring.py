"""Contract "Scoring"."""

from __future__ import annotations

from pathlib import Path

from leadrules.engine.replay.explain import explain_prospect
from leadrules.engine.timefmt import parse_timestamp
from tests.scenario import at, identify, page, pick, run, run_full, track

# A trigger that notifies on every `Ping` shows the score at that moment.
OBSERVE = """
    triggers:
      - id: observe
        when: {event: Ping}
        then:
          - notify: {channel: log, template: t}
    """


def scores(records: list[dict]) -> list[tuple]:
    return pick([r for r in records if r["rule"] == "observe"], "at", "score")


def test_behaviour_rule_awards_points_once_per_matching_event(tmp_path: Path) -> None:
    rules = (
        """
    scoring:
      rules:
        - id: pricing
          when: {page: {path: /pricing}}
          points: 10
    """
        + OBSERVE
    )
    events = [
        page("u1", at(0), "/pricing"),
        page("u1", at(1), "/pricing"),
        page("u1", at(2), "/blog"),
        track("u1", at(3), "Ping"),
    ]
    assert scores(run(tmp_path, rules, events)) == [(at(3), 20)]


def test_every_matching_rule_scores_the_same_event(tmp_path: Path) -> None:
    rules = (
        """
    scoring:
      rules:
        - {id: any-page, when: {page: {}}, points: 1}
        - {id: pricing, when: {page: {path: {glob: "/pricing*"}}}, points: 10}
    """
        + OBSERVE
    )
    events = [page("u1", at(0), "/pricing/enterprise"), track("u1", at(1), "Ping")]
    assert scores(run(tmp_path, rules, events)) == [(at(1), 11)]


def test_limit_times_per_rolling_window(tmp_path: Path) -> None:
    rules = (
        """
    scoring:
      rules:
        - id: pricing
          when: {page: {path: /pricing}}
          points: 10
          limit: {times: 3, per: 7d}
    """
        + OBSERVE
    )
    events = [page("u1", at(d), "/pricing") for d in (0, 1, 2, 3)]  # the 4th is over the limit
    events += [track("u1", at(3, hours=1), "Ping")]
    events += [page("u1", at(7, minutes=1), "/pricing")]  # day 0 is out of the window now
    events += [track("u1", at(7, hours=1), "Ping")]
    assert scores(run(tmp_path, rules, events)) == [(at(3, hours=1), 30), (at(7, hours=1), 40)]


def test_limit_window_includes_an_award_exactly_per_earlier(tmp_path: Path) -> None:
    rules = (
        """
    scoring:
      rules:
        - id: pricing
          when: {page: {path: /pricing}}
          points: 10
          limit: {times: 1, per: 7d}
    """
        + OBSERVE
    )
    events = [
        page("u1", at(0), "/pricing"),
        page("u1", at(7), "/pricing"),
        track("u1", at(7, 1), "Ping"),
    ]
    assert scores(run(tmp_path, rules, events)) == [(at(7, 1), 10)]


def test_limit_without_per_is_a_lifetime_limit(tmp_path: Path) -> None:
    rules = (
        """
    scoring:
      rules:
        - id: demo
          when: {event: Demo Requested}
          points: 40
          limit: {times: 1}
    """
        + OBSERVE
    )
    events = [
        track("u1", at(0), "Demo Requested"),
        track("u1", at(400), "Demo Requested"),
        track("u1", at(401), "Ping"),
    ]
    assert scores(run(tmp_path, rules, events)) == [(at(401), 40)]


def test_expires_after_points_count_while_t_before_e_plus_d(tmp_path: Path) -> None:
    rules = (
        """
    scoring:
      rules:
        - id: pricing
          when: {page: {path: /pricing}}
          points: 10
          expires_after: 30d
    """
        + OBSERVE
    )
    events = [
        page("u1", at(0), "/pricing"),
        track("u1", at(29, hours=23), "Ping"),
        track("u1", at(30), "Ping"),  # exactly E + D: no longer counts
    ]
    assert scores(run(tmp_path, rules, events)) == [(at(29, hours=23), 10), (at(30), 0)]


def test_scoring_expires_after_is_the_default_for_behaviour_rules(tmp_path: Path) -> None:
    rules = (
        """
    scoring:
      expires_after: 10d
      rules:
        - {id: a, when: {page: {path: /a}}, points: 5}
        - {id: b, when: {page: {path: /b}}, points: 7, expires_after: 20d}
    """
        + OBSERVE
    )
    events = [
        page("u1", at(0), "/a"),
        page("u1", at(0), "/b"),
        track("u1", at(15), "Ping"),
        track("u1", at(25), "Ping"),
    ]
    assert scores(run(tmp_path, rules, events)) == [(at(15), 7), (at(25), 0)]


def test_fit_rule_counts_while_traits_satisfy_it_and_never_twice(tmp_path: Path) -> None:
    rules = (
        """
    scoring:
      expires_after: 1d
      rules:
        - id: senior-title
          when: {trait: {title: {matches: "(?i)\\\\b(vp|director)\\\\b"}}}
          points: 20
    """
        + OBSERVE
    )
    events = [
        identify("u1", at(0), title="VP Sales"),
        identify("u1", at(1), title="Director, VP Office"),  # still holds: not counted twice
        track("u1", at(100), "Ping"),  # fit points never expire
        identify("u1", at(101), title="Engineer"),
        track("u1", at(102), "Ping"),
    ]
    assert scores(run(tmp_path, rules, events)) == [(at(100), 20), (at(102), 0)]


def test_negative_points_lower_the_score(tmp_path: Path) -> None:
    rules = (
        """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 30}
        - {id: unsubscribed, when: {event: Unsubscribed}, points: -50}
    """
        + OBSERVE
    )
    events = [page("u1", at(0)), track("u1", at(1), "Unsubscribed"), track("u1", at(2), "Ping")]
    assert scores(run(tmp_path, rules, events)) == [(at(2), -20)]


def test_scoring_of_an_event_is_decided_before_its_triggers(tmp_path: Path) -> None:
    rules = (
        """
    scoring:
      rules:
        - {id: ping-points, when: {event: Ping}, points: 5}
    """
        + OBSERVE
    )
    events = [track("u1", at(0), "Ping")]
    assert scores(run(tmp_path, rules, events)) == [(at(0), 5)]


def test_every_point_has_a_reason(tmp_path: Path) -> None:
    rules = """
    scoring:
      rules:
        - {id: pricing, when: {page: {path: /pricing}}, points: 10, expires_after: 5d}
        - {id: senior, when: {trait: {title: VP}}, points: 20}
    """
    events = [
        identify("u1", at(0), title="VP"),
        page("u1", at(1), "/pricing"),
        page("u1", at(10), "/pricing"),
    ]
    _, result = run_full(tmp_path, rules, events, keep_history=True)
    report = explain_prospect(
        result.world, result.evaluator.compiled.rules, "u1", parse_timestamp(at(10))
    )
    assert report is not None
    assert report["score"] == 30
    rows = [(c["rule"], c["points"], c.get("status", "fit")) for c in report["contributions"]]
    assert rows == [("senior", 20, "fit"), ("pricing", 10, "expired"), ("pricing", 10, "active")]
    active = next(c for c in report["contributions"] if c.get("status") == "active")
    assert active["event"]["path"] == "/pricing"
    assert active["expires_at"] == at(15)
