"""Contract "Events (input)": identity, traits and messageId."""

from __future__ import annotations

from pathlib import Path

from tests.scenario import at, identify, page, pick, run, track

RULES = """
scoring:
  rules:
    - {id: pricing, when: {page: {path: /pricing}}, points: 30}
    - {id: vp, when: {trait: {title: VP}}, points: 20}
triggers:
  - id: pricing-3x
    when: {page: {path: /pricing}, times: 3, within: 7d}
    then:
      - notify: {channel: sales, template: x}
  - id: guide
    when: {event: Guide Downloaded}
    then:
      - start_sequence: nurture
  - id: ping
    when: {event: Ping}
    then:
      - notify: {channel: log, template: x}
sequences:
  nurture:
    steps:
      - wait: 1d
      - send: {channel: email, template: a}
lifecycle:
  mql_threshold: 100
"""


def test_identify_links_anonymous_history_to_the_known_prospect(tmp_path: Path) -> None:
    events = [
        page("anon-1", at(0), "/pricing", anonymous=True),
        page("anon-1", at(0, 1), "/pricing", anonymous=True),
        track("anon-1", at(0, 2), "Guide Downloaded", anonymous=True),
        identify("u1", at(0, 3), "anon-1", title="VP"),
        page("u1", at(0, 4), "/pricing"),  # the third pricing visit, counting the anonymous ones
    ]
    records = run(tmp_path, RULES, events, until=at(2))
    assert pick(records, "at", "prospect", "action", "rule", "score") == [
        (at(0, 2), "anon-1", "start_sequence", "guide", 60),
        (at(0, 4), "u1", "set_stage", "lifecycle.mql", 110),
        (at(0, 4), "u1", "notify", "pricing-3x", 110),
        # the enrolment made while anonymous goes on for the known prospect
        (at(1, 2), "u1", "send", "sequence:nurture", 110),
    ]


def test_events_from_the_anonymous_id_after_linking_count_for_the_known_prospect(
    tmp_path: Path,
) -> None:
    events = [
        page("anon-1", at(0), "/pricing", anonymous=True),
        identify("u1", at(0, 1), "anon-1"),
        page("anon-1", at(0, 2), "/pricing", anonymous=True),
        track("u1", at(0, 3), "Ping"),
    ]
    assert pick(run(tmp_path, RULES, events), "prospect", "rule", "score") == [("u1", "ping", 60)]


def test_alias_links_previous_id_to_user_id(tmp_path: Path) -> None:
    events = [
        page("anon-9", at(0), "/pricing", anonymous=True),
        {
            "type": "alias",
            "previousId": "anon-9",
            "userId": "u9",
            "timestamp": at(0, 1),
            "messageId": "al-1",
        },
        track("u9", at(0, 2), "Ping"),
    ]
    assert pick(run(tmp_path, RULES, events), "prospect", "score") == [("u9", 30)]


def test_merging_points_can_make_an_mql_at_the_identify(tmp_path: Path) -> None:
    rules = RULES.replace("mql_threshold: 100", "mql_threshold: 80")
    events = [
        page("anon-1", at(0), "/pricing", anonymous=True),
        page("anon-1", at(0, 1), "/pricing", anonymous=True),
        identify("u1", at(0, 2), title="VP"),
        identify("u1", at(0, 4), "anon-1"),
    ]
    stages = [r for r in run(tmp_path, rules, events) if r["action"] == "set_stage"]
    assert pick(stages, "at", "prospect", "score") == [(at(0, 4), "u1", 80)]


def test_identify_merges_traits_later_values_win(tmp_path: Path) -> None:
    events = [
        identify("u1", at(0), title="VP", name="Ann"),
        identify("u1", at(1), title="Engineer"),
        track("u1", at(2), "Ping"),
    ]
    assert pick(run(tmp_path, RULES, events), "score") == [(0,)]


def test_a_second_message_with_the_same_message_id_is_ignored(tmp_path: Path) -> None:
    first = page("u1", at(0), "/pricing")
    again = dict(first, timestamp=at(0, 1))
    events = [first, again, track("u1", at(0, 2), "Ping")]
    assert pick(run(tmp_path, RULES, events), "score") == [(30,)]


EXPIRING = """
scoring:
  rules:
    - {id: pricing, when: {page: {path: /pricing}}, points: 30, expires_after: 30d}
    - {id: ping-point, when: {event: Ping}, points: 1}
triggers:
  - id: ping
    when: {event: Ping}
    then:
      - notify: {channel: log, template: x}
"""


def test_identity_merging_ids_whose_expiring_points_share_due_time_and_number(
    tmp_path: Path,
) -> None:
    """Two anonymous ids each earn their first expiring points at the same instant (the
    same expiry, the same per-prospect sequence number); both merge into one prospect and
    both awards count until they expire together."""
    events = [
        page("a1", at(0), "/pricing", anonymous=True),
        page("a2", at(0), "/pricing", anonymous=True),
        identify("u", at(1), anonymous_id="a1"),
        identify("u", at(2), anonymous_id="a2"),
        track("u", at(3), "Ping"),
        track("u", at(31), "Ping"),
    ]
    assert pick(run(tmp_path, EXPIRING, events), "at", "score") == [
        (at(3), 61),
        (at(31), 2),
    ]
