"""Contract "Sequences" and "Actions": enrolment, steps up to the first wait at once, exits
by event and by stage, and what the natural end and a suppressed send leave out."""

from __future__ import annotations

from pathlib import Path

from tests.core.contract_support import Replayed
from tests.scenario import at, page, pick, run, track

RULES = """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 50}
    lifecycle:
      mql_threshold: 100
    triggers:
      - id: replied
        when: {event: Email Replied}
        then:
          - start_sequence: follow-up
          - notify: {channel: log, template: after-start}
      - id: enrol
        when: {event: Enrol}
        then:
          - start_sequence: follow-up
      - id: leave
        when: {event: Leave}
        then:
          - stop_sequence: follow-up
    sequences:
      follow-up:
        exit_when:
          - {event: Email Replied}
          - {stage: {in: [mql, sal]}}
        steps:
          - send: {channel: email, template: one}
          - notify: {channel: sales, template: two}
          - wait: 1d
          - send: {channel: email, template: three}
          - wait: 1d
          - notify: {channel: sales, template: four}
    """

KEYS = ("at", "action", "rule", "step")


def test_sequences_an_enrolment_is_not_ended_by_the_event_that_started_it(
    tmp_path: Path,
) -> None:
    events = [track("u1", at(0), "Email Replied"), track("u1", at(1, 12), "Email Replied")]
    records = run(tmp_path, RULES, events, until=at(5))
    assert pick(records, *KEYS) == [
        (at(0), "start_sequence", "replied", None),
        (at(0), "send", "sequence:follow-up", 1),
        (at(0), "notify", "sequence:follow-up", 2),
        (at(0), "notify", "replied", None),  # after the steps up to the first wait
        (at(1), "send", "sequence:follow-up", 4),
        # the second reply ends the enrolment, then starts a new one
        (at(1, 12), "stop_sequence", "sequence:follow-up", None),
        (at(1, 12), "start_sequence", "replied", None),
        (at(1, 12), "send", "sequence:follow-up", 1),
        (at(1, 12), "notify", "sequence:follow-up", 2),
        (at(1, 12), "notify", "replied", None),
        (at(2, 12), "send", "sequence:follow-up", 4),
        (at(3, 12), "notify", "sequence:follow-up", 6),
    ]
    assert all(r.get("sequence") == "follow-up" for r in records if r["rule"] != "replied")


def test_sequences_a_prospect_already_enrolled_is_not_enrolled_twice(tmp_path: Path) -> None:
    events = [track("u1", at(0), "Enrol"), track("u1", at(0, 1), "Enrol")]
    records = run(tmp_path, RULES, events, until=at(5))
    assert pick(records, *KEYS) == [
        (at(0), "start_sequence", "enrol", None),
        (at(0), "send", "sequence:follow-up", 1),
        (at(0), "notify", "sequence:follow-up", 2),
        (at(1), "send", "sequence:follow-up", 4),
        (at(2), "notify", "sequence:follow-up", 6),
    ]


def test_sequences_the_natural_end_writes_no_record_and_allows_a_new_enrolment(
    tmp_path: Path,
) -> None:
    events = [track("u1", at(0), "Enrol"), track("u1", at(3), "Enrol")]
    records = run(tmp_path, RULES, events, until=at(3, 12))
    assert [r["action"] for r in records].count("start_sequence") == 2
    assert "stop_sequence" not in [r["action"] for r in records]
    assert pick(records, *KEYS)[-3:] == [
        (at(3), "start_sequence", "enrol", None),
        (at(3), "send", "sequence:follow-up", 1),
        (at(3), "notify", "sequence:follow-up", 2),
    ]


def test_sequences_a_stage_named_in_exit_when_ends_the_enrolment(tmp_path: Path) -> None:
    events = [
        track("u1", at(0), "Enrol"),
        page("u1", at(0, 1)),
        page("u1", at(0, 2)),  # mql
    ]
    records = run(tmp_path, RULES, events, until=at(5))
    assert pick(records, *KEYS)[3:] == [
        (at(0, 2), "set_stage", "lifecycle.mql", None),
        (at(0, 2), "stop_sequence", "sequence:follow-up", None),
    ]


def test_sequences_starting_in_an_exit_stage_ends_at_once(tmp_path: Path) -> None:
    events = [page("u1", at(0)), page("u1", at(0, 1)), track("u1", at(0, 2), "Enrol")]
    records = run(tmp_path, RULES, events, until=at(5))
    assert pick(records, *KEYS) == [
        (at(0, 1), "set_stage", "lifecycle.mql", None),
        (at(0, 2), "start_sequence", "enrol", None),
        (at(0, 2), "stop_sequence", "sequence:follow-up", None),
    ]


def test_sequences_a_stage_not_named_in_exit_when_keeps_the_enrolment(tmp_path: Path) -> None:
    events = [track("u1", at(0), "Enrol"), track("u1", at(0, 1), "Lead Qualified")]
    records = run(tmp_path, RULES, events, until=at(5))
    assert [r["action"] for r in records].count("stop_sequence") == 0
    assert pick(records, *KEYS)[-1] == (at(2), "notify", "sequence:follow-up", 6)


def test_sequences_stop_sequence_writes_a_record_only_when_enrolled(tmp_path: Path) -> None:
    events = [
        track("u1", at(0), "Leave"),
        track("u1", at(0, 1), "Enrol"),
        track("u1", at(0, 2), "Leave"),
        track("u1", at(0, 3), "Leave"),
    ]
    records = run(tmp_path, RULES, events, until=at(5))
    assert pick(records, *KEYS) == [
        (at(0, 1), "start_sequence", "enrol", None),
        (at(0, 1), "send", "sequence:follow-up", 1),
        (at(0, 1), "notify", "sequence:follow-up", 2),
        (at(0, 2), "stop_sequence", "leave", None),
    ]


def test_sequences_a_wait_left_behind_by_an_ended_enrolment_runs_nothing(tmp_path: Path) -> None:
    events = [
        track("u1", at(0), "Enrol"),
        track("u1", at(0, 1), "Leave"),
        track("u1", at(0, 12), "Enrol"),  # the old wait ends at 1d, the new one at 1d12h
    ]
    records = run(tmp_path, RULES, events, until=at(5))
    steps = [(r["at"], r["step"]) for r in records if r.get("step") in (4, 6)]
    assert steps == [(at(1, 12), 4), (at(2, 12), 6)]


def test_sequences_a_suppressed_send_is_no_record_but_the_steps_go_on(tmp_path: Path) -> None:
    events = [track("u1", at(0), "Unsubscribed"), track("u1", at(0, 1), "Enrol")]
    records = run(tmp_path, RULES, events, until=at(5))
    assert pick(records, *KEYS) == [
        (at(0, 1), "start_sequence", "enrol", None),
        (at(0, 1), "notify", "sequence:follow-up", 2),
        (at(2, 1), "notify", "sequence:follow-up", 6),
    ]


def test_sequences_templates_are_told_the_sequence_and_step(tmp_path: Path) -> None:
    replayed = Replayed(tmp_path, RULES, [track("u1", at(0), "Enrol")], until=at(3))
    shown = [
        (c["rule"], c["sequence"], c["step"], c["channel"], c["template"], c["at"])
        for c in replayed.contexts
    ]
    assert shown == [
        ("sequence:follow-up", "follow-up", 1, "email", "one", at(0)),
        ("sequence:follow-up", "follow-up", 2, "sales", "two", at(0)),
        ("sequence:follow-up", "follow-up", 4, "email", "three", at(1)),
        ("sequence:follow-up", "follow-up", 6, "sales", "four", at(2)),
    ]
    report = replayed.explain("u1", at(3))
    assert report["enrolments"] == []


def test_sequences_explain_shows_the_next_step_of_an_enrolment(tmp_path: Path) -> None:
    replayed = Replayed(tmp_path, RULES, [track("u1", at(0), "Enrol")])
    assert replayed.explain("u1", at(0))["enrolments"] == [
        {"sequence": "follow-up", "since": at(0), "next_step": 4}
    ]


def test_sequences_an_enrolment_made_by_on_reject_survives_the_rejection_event(
    tmp_path: Path,
) -> None:
    rules = """
    lifecycle:
      mql_threshold: 100
      on_reject:
        then:
          - start_sequence: win-back
    sequences:
      win-back:
        exit_when:
          - {event: Lead Rejected}
        steps:
          - wait: 1d
          - send: {channel: email, template: back}
    """
    events = [
        track("u1", at(0), "Lead Rejected", reason="timing"),
        track("u2", at(0), "Lead Rejected"),
        track("u2", at(0, 1), "Lead Rejected"),  # a later rejection ends it
    ]
    records = run(tmp_path, rules, events, until=at(3))
    assert pick([r for r in records if r["prospect"] == "u1"], "at", "action") == [
        (at(0), "set_stage"),
        (at(0), "start_sequence"),
        (at(1), "send"),
    ]
    assert pick([r for r in records if r["prospect"] == "u2"], "at", "action") == [
        (at(0), "set_stage"),
        (at(0), "start_sequence"),
        (at(0, 1), "stop_sequence"),
    ]
