"""Contract "Lifecycle"."""

from __future__ import annotations

from pathlib import Path

from tests.scenario import at, identify, page, pick, run, track

LIFECYCLE = """
scoring:
  rules:
    - {id: visit, when: {page: {}}, points: 30}
    - {id: senior, when: {trait: {title: VP}}, points: 20}
lifecycle:
  mql_threshold: 80
  on_mql:
    - notify: {channel: sales, template: new-mql}
  sla:
    accept_within: 4h
    on_breach:
      - notify: {channel: sales-managers, template: sla-breached}
  on_reject:
    reset_score: true
    then:
      - start_sequence: long-term-nurture
sequences:
  long-term-nurture:
    steps:
      - wait: 30d
      - send: {channel: email, template: monthly}
"""

KEYS = ("at", "action", "rule", "stage", "score")


def test_lead_becomes_mql_when_score_reaches_threshold_and_on_mql_runs(tmp_path: Path) -> None:
    events = [page("u1", at(0)), page("u1", at(0, 1)), page("u1", at(0, 2))]
    records = run(tmp_path, LIFECYCLE, events)
    assert records[:2] == [
        {
            "at": at(0, 2),
            "prospect": "u1",
            "action": "set_stage",
            "rule": "lifecycle.mql",
            "score": 90,
            "stage": "mql",
        },
        {
            "at": at(0, 2),
            "prospect": "u1",
            "action": "notify",
            "rule": "lifecycle.mql",
            "channel": "sales",
            "template": "new-mql",
            "score": 90,
            "stage": "mql",
        },
    ]


def test_fit_points_from_identify_can_make_an_mql(tmp_path: Path) -> None:
    events = [page("u1", at(0)), page("u1", at(0, 1)), identify("u1", at(0, 2), title="VP")]
    assert pick(run(tmp_path, LIFECYCLE, events)[:1], *KEYS) == [
        (at(0, 2), "set_stage", "lifecycle.mql", "mql", 80)
    ]


def test_sla_breach_runs_once_at_the_deadline(tmp_path: Path) -> None:
    events = [page("u1", at(0)), page("u1", at(0, 1)), page("u1", at(0, 2)), page("u1", at(1))]
    records = run(tmp_path, LIFECYCLE, events)
    breaches = [r for r in records if r["rule"] == "lifecycle.sla"]
    assert pick(breaches, "at", "action", "channel", "template", "stage") == [
        (at(0, 6), "notify", "sales-managers", "sla-breached", "mql")
    ]


def test_no_sla_breach_when_accepted_in_time(tmp_path: Path) -> None:
    events = [
        page("u1", at(0)),
        page("u1", at(0, 1)),
        page("u1", at(0, 2)),
        track("u1", at(0, 5), "Lead Accepted"),
    ]
    records = run(tmp_path, LIFECYCLE, events, until=at(2))
    assert pick(records, "action", "rule", "stage") == [
        ("set_stage", "lifecycle.mql", "mql"),
        ("notify", "lifecycle.mql", "mql"),
        ("set_stage", "lifecycle.sal", "sal"),
    ]


def test_events_at_the_sla_deadline_are_processed_before_the_breach(tmp_path: Path) -> None:
    events = [
        page("u1", at(0)),
        page("u1", at(0, 1)),
        page("u1", at(0, 2)),
        track("u1", at(0, 6), "Lead Accepted"),
    ]
    records = run(tmp_path, LIFECYCLE, events)
    assert [r for r in records if r["rule"] == "lifecycle.sla"] == []


def test_feedback_moves_sal_sql_customer(tmp_path: Path) -> None:
    events = [page("u1", at(0)), page("u1", at(0, 1)), page("u1", at(0, 2))]
    events += [
        track("u1", at(0, 3), "Lead Accepted"),
        track("u1", at(1), "Lead Qualified"),
        track("u1", at(9), "Deal Won"),
    ]
    stages = [r for r in run(tmp_path, LIFECYCLE, events) if r["action"] == "set_stage"]
    assert pick(stages, "at", "rule", "stage") == [
        (at(0, 2), "lifecycle.mql", "mql"),
        (at(0, 3), "lifecycle.sal", "sal"),
        (at(1), "lifecycle.sql", "sql"),
        (at(9), "lifecycle.customer", "customer"),
    ]


def test_lead_accepted_only_moves_an_mql(tmp_path: Path) -> None:
    events = [page("u1", at(0)), track("u1", at(1), "Lead Accepted")]
    assert [r for r in run(tmp_path, LIFECYCLE, events) if r["action"] == "set_stage"] == []


def test_lead_rejected_recycles_resets_behaviour_points_and_runs_on_reject(tmp_path: Path) -> None:
    events = [identify("u1", at(0), title="VP"), page("u1", at(0, 1)), page("u1", at(0, 2))]
    events += [track("u1", at(0, 3), "Lead Rejected", reason="no budget")]
    records = run(tmp_path, LIFECYCLE, events, until=at(40))
    assert pick(records[2:], "at", "action", "rule", "stage", "score") == [
        (at(0, 3), "set_stage", "lifecycle.recycled", "recycled", 80),
        (at(0, 3), "start_sequence", "lifecycle.recycled", "recycled", 20),  # fit points stay
        (at(30, 3), "send", "sequence:long-term-nurture", "recycled", 20),
    ]


def test_never_mql_twice_without_being_recycled(tmp_path: Path) -> None:
    events = [page("u1", at(d)) for d in range(6)]  # 30, 60, 90 (mql), 120, 150, 180
    mqls = [
        r
        for r in run(tmp_path, LIFECYCLE, events, until=at(5))
        if r["rule"] == "lifecycle.mql" and r["action"] == "set_stage"
    ]
    assert len(mqls) == 1


def test_a_recycled_prospect_becomes_mql_again_from_below(tmp_path: Path) -> None:
    events = [page("u1", at(0)), page("u1", at(0, 1)), page("u1", at(0, 2))]
    events += [track("u1", at(0, 3), "Lead Rejected", reason="bad timing")]
    events += [page("u1", at(1)), page("u1", at(1, 1)), page("u1", at(1, 2))]
    stages = [r for r in run(tmp_path, LIFECYCLE, events) if r["action"] == "set_stage"]
    assert pick(stages, "at", "stage", "score") == [
        (at(0, 2), "mql", 90),
        (at(0, 3), "recycled", 90),
        (at(1, 2), "mql", 90),
    ]


def test_expiring_negative_points_can_make_an_mql(tmp_path: Path) -> None:
    rules = """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 30}
        - {id: unsubscribed, when: {event: Unsubscribed}, points: -50, expires_after: 10d}
    lifecycle:
      mql_threshold: 80
    """
    events = [track("u1", at(0), "Unsubscribed")] + [page("u1", at(1, h)) for h in range(3)]
    assert pick(run(tmp_path, rules, events, until=at(20)), "at", "stage", "score") == [
        (at(10), "mql", 90)
    ]


def test_each_expiry_of_negative_points_is_checked_in_turn(tmp_path: Path) -> None:
    rules = """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 30}
        - {id: bounce, when: {event: Bounced}, points: -20, expires_after: 10d}
    lifecycle:
      mql_threshold: 80
    """
    events = [track("u1", at(0), "Bounced"), track("u1", at(2), "Bounced")]
    events += [page("u1", at(3, h)) for h in range(3)]
    # 90 - 40 = 50 on day 3; the first bounce expires on day 10 (70), the second on day 12 (90)
    records = run(tmp_path, rules, events, until=at(20))
    assert pick(records, "at", "stage", "score") == [(at(12), "mql", 90)]
