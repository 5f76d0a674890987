"""Contract "Lifecycle": the MQL threshold from below, sales feedback, the SLA, and what the
templates are told (contract "Templates")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.contract_support import PING, Replayed
from tests.scenario import at, identify, page, pick, run, track

RULES = """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 30}
        - {id: bounce, when: {event: Bounce}, points: -20}
        - {id: tiny, when: {event: Tiny}, points: 10}
    lifecycle:
      mql_threshold: 60
      on_mql:
        - notify: {channel: sales, template: new-mql}
      sla:
        accept_within: 4h
        on_breach:
          - notify: {channel: sales-managers, template: sla-breached}
      on_reject:
        reset_score: false
        then:
          - notify: {channel: crm, template: rejected}
    """


def test_lifecycle_a_recycled_prospect_at_the_threshold_becomes_mql_only_from_below(
    tmp_path: Path,
) -> None:
    events = [
        page("u1", at(0)),
        page("u1", at(0, 1)),  # 60: mql
        track("u1", at(0, 2), "Lead Rejected", reason="timing"),  # recycled, still 60
        track("u1", at(0, 3), "Tiny"),  # 70: it did not rise from below
        track("u1", at(0, 4), "Bounce"),  # 50
        track("u1", at(0, 5), "Tiny"),  # 60: from below, mql again
    ]
    records = run(tmp_path, RULES + PING, events, until=at(1))
    stages = [(r["at"], r["action"], r["rule"], r["score"]) for r in records]
    assert stages == [
        (at(0, 1), "set_stage", "lifecycle.mql", 60),
        (at(0, 1), "notify", "lifecycle.mql", 60),
        (at(0, 2), "set_stage", "lifecycle.recycled", 60),
        (at(0, 2), "notify", "lifecycle.recycled", 60),
        (at(0, 5), "set_stage", "lifecycle.mql", 60),
        (at(0, 5), "notify", "lifecycle.mql", 60),
        (at(0, 9), "notify", "lifecycle.sla", 60),
    ]


def test_lifecycle_an_mql_never_becomes_mql_twice_without_being_recycled(tmp_path: Path) -> None:
    events = [
        page("u1", at(0)),
        page("u1", at(0, 1)),  # 60: mql
        track("u1", at(0, 2), "Bounce"),  # 40
        track("u1", at(0, 3), "Tiny"),
        track("u1", at(0, 3), "Tiny"),  # 60 again
        track("u1", at(0, 3), "Lead Accepted"),
    ]
    records = run(tmp_path, RULES, events)
    assert pick(records, "at", "action", "rule", "stage") == [
        (at(0, 1), "set_stage", "lifecycle.mql", "mql"),
        (at(0, 1), "notify", "lifecycle.mql", "mql"),
        (at(0, 3), "set_stage", "lifecycle.sal", "sal"),
    ]


def test_lifecycle_the_score_reaching_the_threshold_exactly_is_enough(tmp_path: Path) -> None:
    events = [track("u1", at(0, i), "Tiny") for i in range(6)]
    records = run(tmp_path, RULES, events)
    assert pick(records, "at", "action", "score")[:1] == [(at(0, 5), "set_stage", 60)]
    events = [track("u2", at(0, i), "Tiny") for i in range(5)]
    assert run(tmp_path / "below", RULES, events) == []


def test_lifecycle_rejecting_a_recycled_prospect_again_does_not_run_on_reject(
    tmp_path: Path,
) -> None:
    events = [
        page("u1", at(0)),
        page("u1", at(0, 1)),
        track("u1", at(0, 2), "Lead Rejected", reason="timing"),
        track("u1", at(0, 3), "Lead Rejected", reason="no budget"),
    ]
    replayed = Replayed(tmp_path, RULES, events)
    assert pick(replayed.records, "at", "action", "rule") == [
        (at(0, 1), "set_stage", "lifecycle.mql"),
        (at(0, 1), "notify", "lifecycle.mql"),
        (at(0, 2), "set_stage", "lifecycle.recycled"),
        (at(0, 2), "notify", "lifecycle.recycled"),
    ]
    report = replayed.explain("u1", at(1))
    assert report["reject_reason"] == "no budget"
    assert [(h["stage"], h["reason"]) for h in report["history"]] == [
        ("mql", None),
        ("recycled", "timing"),
    ]


def test_lifecycle_lead_rejected_keeps_its_reason_in_history_and_templates(
    tmp_path: Path,
) -> None:
    events = [
        page("u1", at(0)),
        page("u1", at(0, 1)),
        track("u1", at(0, 2), "Lead Rejected", reason="no budget"),
        track("u2", at(0, 2), "Lead Rejected"),  # no reason given
        track("u3", at(0, 2), "Lead Rejected", reason=3),
    ]
    replayed = Replayed(tmp_path, RULES, events)
    on_reject = [c for c in replayed.contexts if c["rule"] == "lifecycle.recycled"]
    assert [(c["prospect"], c["reject_reason"]) for c in on_reject] == [
        ("u1", "no budget"),
        ("u2", None),
        ("u3", "3"),
    ]
    history = replayed.explain("u1", at(1))["history"]
    assert history[-1] == {
        "at": at(0, 2),
        "stage": "recycled",
        "rule": "lifecycle.recycled",
        "reason": "no budget",
    }
    assert replayed.explain("u2", at(1))["history"][-1]["reason"] is None


def test_lifecycle_a_customer_is_never_rejected(tmp_path: Path) -> None:
    events = [
        track("u1", at(0), "Deal Won"),
        track("u1", at(0, 1), "Lead Rejected", reason="late"),
    ]
    replayed = Replayed(tmp_path, RULES, events)
    assert pick(replayed.records, "action", "rule", "stage") == [
        ("set_stage", "lifecycle.customer", "customer")
    ]
    assert replayed.explain("u1", at(1))["reject_reason"] is None


# Each stage reached from a fresh lead, then each feedback event applied to it.
_REACH = {
    "lead": [],
    "mql": ["visit", "visit"],
    "sal": ["visit", "visit", "Lead Accepted"],
    "sql": ["Lead Qualified"],
    "customer": ["Deal Won"],
    "recycled": ["Lead Rejected"],
}
_MOVES = {
    # feedback: {from stage: to stage}; stages not named stay where they are
    "Lead Accepted": {"mql": "sal"},
    "Lead Qualified": {"lead": "sql", "mql": "sql", "sal": "sql", "recycled": "sql"},
    "Deal Won": {s: "customer" for s in ("lead", "mql", "sal", "sql", "recycled")},
    "Lead Rejected": {s: "recycled" for s in ("lead", "mql", "sal", "sql")},
    "Deal Lost": {},
}


@pytest.mark.parametrize("feedback", sorted(_MOVES))
@pytest.mark.parametrize("stage", sorted(_REACH))
def test_lifecycle_sales_feedback_moves_only_from_its_stages(
    tmp_path: Path, stage: str, feedback: str
) -> None:
    events = []
    for i, step in enumerate(_REACH[stage]):
        when = at(0, minutes=i)
        events.append(page("u1", when) if step == "visit" else track("u1", when, step))
    events.append(track("u1", at(0, 1), feedback))
    events.append(track("u1", at(0, 2), "Ping"))
    records = run(tmp_path, RULES + PING, events)
    assert records[-1]["rule"] == "ping"
    assert records[-1]["stage"] == _MOVES[feedback].get(stage, stage)
    moved = [r for r in records if r["at"] == at(0, 1) and r["action"] == "set_stage"]
    assert len(moved) == (1 if stage in _MOVES[feedback] else 0)


def test_lifecycle_a_stale_sla_timer_never_breaches_the_new_mql(tmp_path: Path) -> None:
    events = [
        page("u1", at(0)),
        page("u1", at(0, 1)),  # mql at 1h: its SLA would end at 5h
        track("u1", at(0, 2), "Lead Rejected", reason="timing"),
        track("u1", at(0, 3), "Bounce"),  # 40
        page("u1", at(0, 4)),  # 70: mql again at 4h; its SLA ends at 8h
    ]
    records = run(tmp_path, RULES, events, until=at(2))
    breaches = [r["at"] for r in records if r["rule"] == "lifecycle.sla"]
    assert breaches == [at(0, 8)]


def test_lifecycle_the_sla_breaches_once_at_its_moment_unless_answered(tmp_path: Path) -> None:
    mql = [page("u1", at(0)), page("u1", at(0, 1))]
    records = run(tmp_path / "silent", RULES, mql, until=at(3))
    assert pick([r for r in records if r["rule"] == "lifecycle.sla"], "at", "channel") == [
        (at(0, 5), "sales-managers")
    ]
    answered = [*mql, track("u1", at(0, 5, seconds=-1), "Lead Accepted")]
    records = run(tmp_path / "accepted", RULES, answered, until=at(3))
    assert [r for r in records if r["rule"] == "lifecycle.sla"] == []
    rejected = [*mql, track("u1", at(0, 3), "Lead Rejected")]
    records = run(tmp_path / "rejected", RULES, rejected, until=at(3))
    assert [r for r in records if r["rule"] == "lifecycle.sla"] == []


def test_lifecycle_templates_get_the_sla_deadline_of_an_mql(tmp_path: Path) -> None:
    events = [
        identify("u1", at(0), title="VP", email="vp@example.com"),
        page("u1", at(0, 1), "/a"),
        page("u1", at(0, 2), "/b"),
    ]
    replayed = Replayed(tmp_path, RULES, events, until=at(1))
    on_mql, breach = replayed.contexts
    assert on_mql["rule"] == "lifecycle.mql"
    assert on_mql["sla_deadline"] == at(0, 6)
    assert on_mql["stage"] == "mql"
    assert on_mql["score"] == 60
    assert on_mql["traits"] == {"title": "VP", "email": "vp@example.com"}
    assert breach["rule"] == "lifecycle.sla"
    assert breach["at"] == at(0, 6)
    assert breach["sla_deadline"] == at(0, 6)
    assert on_mql["event"]["messageId"] == events[2]["messageId"]
    assert breach["event"] is None  # a timer, not an event, decided it


def test_lifecycle_no_sla_deadline_outside_mql_or_without_an_sla(tmp_path: Path) -> None:
    rules = """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 30}
    lifecycle:
      mql_threshold: 60
      on_mql:
        - notify: {channel: sales, template: new-mql}
    """
    events = [page("u1", at(0)), page("u1", at(0, 1)), track("u1", at(0, 2), "Ping")]
    contexts = Replayed(tmp_path / "none", rules + PING, events).contexts
    assert [c["sla_deadline"] for c in contexts] == [None, None]
    events = [track("u2", at(0), "Ping")]
    (ping,) = Replayed(tmp_path / "lead", RULES + PING, events).contexts
    assert ping["sla_deadline"] is None
    assert ping["stage"] == "lead"


def test_lifecycle_no_threshold_means_no_mql(tmp_path: Path) -> None:
    rules = """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 300}
    """
    events = [page("u1", at(0)), track("u1", at(0, 1), "Lead Accepted")]
    assert run(tmp_path, rules, events) == []


def test_lifecycle_the_sla_deadline_is_that_of_the_latest_mql(tmp_path: Path) -> None:
    events = [
        page("u1", at(0)),
        page("u1", at(0, 1)),  # mql at 1h
        track("u1", at(0, 2), "Lead Rejected", reason="timing"),
        track("u1", at(0, 3), "Bounce"),
        page("u1", at(0, 5)),  # mql again at 5h
    ]
    contexts = Replayed(tmp_path, RULES, events).contexts
    on_mql = [c["sla_deadline"] for c in contexts if c["rule"] == "lifecycle.mql"]
    assert on_mql == [at(0, 5), at(0, 9)]
