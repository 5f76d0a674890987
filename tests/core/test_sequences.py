"""Contract "Sequences" and "Actions"."""

from __future__ import annotations

from pathlib import Path

from tests.scenario import at, page, pick, run, track

SEQ = """
triggers:
  - id: start
    when: {event: Start}
    then:
      - start_sequence: roi
  - id: stop
    when: {event: Stop}
    then:
      - stop_sequence: roi
sequences:
  roi:
    exit_when:
      - {event: Email Replied}
      - {stage: {in: [sal, sql, customer]}}
    steps:
      - send: {channel: email, template: one}
      - notify: {channel: sales, template: heads-up}
      - wait: 2d
      - send: {channel: email, template: two}
lifecycle:
  mql_threshold: 10
scoring:
  rules:
    - {id: hot, when: {event: Hot}, points: 10}
"""

KEYS = ("at", "action", "rule", "sequence", "step", "template")


def test_steps_up_to_the_first_wait_are_decided_at_once_and_the_rest_after_it(
    tmp_path: Path,
) -> None:
    records = run(tmp_path, SEQ, [track("u1", at(0), "Start")], until=at(5))
    assert pick(records, *KEYS) == [
        (at(0), "start_sequence", "start", "roi", None, None),
        (at(0), "send", "sequence:roi", "roi", 1, "one"),
        (at(0), "notify", "sequence:roi", "roi", 2, "heads-up"),
        (at(2), "send", "sequence:roi", "roi", 4, "two"),
    ]
    assert records[1]["channel"] == "email"


def test_a_wait_is_not_over_before_its_time(tmp_path: Path) -> None:
    records = run(tmp_path, SEQ, [track("u1", at(0), "Start"), track("u1", at(1, 23), "Other")])
    assert [r["step"] for r in records if r["action"] == "send"] == [1]


def test_already_enrolled_is_not_enrolled_twice_and_writes_no_record(tmp_path: Path) -> None:
    records = run(
        tmp_path, SEQ, [track("u1", at(0), "Start"), track("u1", at(1), "Start")], until=at(5)
    )
    assert [r["at"] for r in records if r["action"] == "start_sequence"] == [at(0)]
    assert [r["step"] for r in records if r["action"] == "send"] == [1, 4]


def test_after_the_natural_end_a_prospect_can_enrol_again(tmp_path: Path) -> None:
    records = run(tmp_path, SEQ, [track("u1", at(0), "Start"), track("u1", at(3), "Start")])
    assert [r["at"] for r in records if r["action"] == "start_sequence"] == [at(0), at(3)]
    assert [r for r in records if r["action"] == "stop_sequence"] == []


def test_exit_when_event_ends_the_enrolment_with_a_stop_record(tmp_path: Path) -> None:
    events = [track("u1", at(0), "Start"), track("u1", at(1), "Email Replied")]
    records = run(tmp_path, SEQ, events, until=at(5))
    assert pick(records[3:], *KEYS) == [(at(1), "stop_sequence", "sequence:roi", "roi", None, None)]


def test_exit_when_stage_ends_the_enrolment(tmp_path: Path) -> None:
    events = [
        track("u1", at(0), "Start"),
        track("u1", at(1), "Hot"),
        track("u1", at(1, 1), "Lead Accepted"),
    ]
    records = run(tmp_path, SEQ, events, until=at(5))
    assert pick(records[3:], "at", "action", "rule", "stage") == [
        (at(1), "set_stage", "lifecycle.mql", "mql"),
        (at(1, 1), "set_stage", "lifecycle.sal", "sal"),
        (at(1, 1), "stop_sequence", "sequence:roi", "sal"),
    ]


def test_starting_in_a_stage_the_sequence_exits_on_ends_it_at_once(tmp_path: Path) -> None:
    events = [
        track("u1", at(0), "Hot"),
        track("u1", at(0, 1), "Lead Accepted"),
        track("u1", at(1), "Start"),
    ]
    records = run(tmp_path, SEQ, events, until=at(5))
    assert pick(records[2:], "action", "rule") == [
        ("start_sequence", "start"),
        ("stop_sequence", "sequence:roi"),
    ]


def test_stop_sequence_action_leaves_the_sequence(tmp_path: Path) -> None:
    events = [
        track("u1", at(0), "Start"),
        track("u1", at(1), "Stop"),
        track("u1", at(1, 1), "Stop"),
    ]
    records = run(tmp_path, SEQ, events, until=at(5))
    assert pick(records[3:], "at", "action", "rule", "sequence") == [
        (at(1), "stop_sequence", "stop", "roi")
    ]


def test_send_to_an_unsubscribed_prospect_is_no_decision(tmp_path: Path) -> None:
    rules = """
    triggers:
      - id: t
        when: {page: {}}
        then:
          - send: {channel: email, template: hello}
          - notify: {channel: sales, template: fyi}
    """
    events = [page("u1", at(0)), track("u1", at(1), "Unsubscribed"), page("u1", at(2))]
    assert pick(run(tmp_path, rules, events), "at", "action") == [
        (at(0), "send"),
        (at(0), "notify"),
        (at(2), "notify"),
    ]


def test_sequence_sends_stop_after_unsubscribe_but_the_enrolment_goes_on(tmp_path: Path) -> None:
    events = [track("u1", at(0), "Start"), track("u1", at(1), "Unsubscribed")]
    records = run(tmp_path, SEQ, events, until=at(5))
    assert pick(records, "action", "step") == [("start_sequence", None), ("send", 1), ("notify", 2)]


def test_exit_when_page_entry(tmp_path: Path) -> None:
    rules = """
    triggers:
      - id: t
        when: {event: Guide Downloaded}
        then: [{start_sequence: re}]
    sequences:
      re:
        exit_when: [{page: {}}]
        steps:
          - wait: 1d
          - send: {channel: email, template: a}
    """
    events = [track("u1", at(0), "Guide Downloaded"), page("u1", at(0, 5))]
    assert pick(run(tmp_path, rules, events, until=at(3)), "at", "action", "rule") == [
        (at(0), "start_sequence", "t"),
        (at(0, 5), "stop_sequence", "sequence:re"),
    ]
