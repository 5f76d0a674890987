"""The conditions RevOps asks for: `stage` and `score` in a trigger's `when`, `unless: {any:
{}}` (no activity of any kind), `Deal Lost` to a configured stage, and a default reason for a
`Lead Rejected` without one."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from leadrules.engine.errors import RuleError
from leadrules.engine.language.loader import load_rules
from tests.core.contract_support import Replayed
from tests.scenario import at, identify, page, pick, run, track, write_rules

BASE = """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 30}
    lifecycle:
      mql_threshold: 60
"""


def _rules(extra: str) -> str:
    return textwrap.dedent(BASE) + textwrap.dedent(extra)


def test_stage_in_trigger_when_matches_the_prospects_lifecycle_stage(tmp_path: Path) -> None:
    rules = _rules("""
        triggers:
          - id: customer-on-pricing
            when: {page: {path: /pricing}, stage: customer}
            then: [{notify: {channel: sales, template: t}}]
          - id: open-lead-on-pricing
            when: {page: {path: /pricing}, stage: {in: [lead, recycled]}}
            then: [{notify: {channel: sales, template: t}}]
        """)
    events = [
        page("u1", at(0), "/pricing"),  # lead: 30
        track("u1", at(1), "Deal Won"),
        page("u1", at(2), "/pricing"),  # customer
    ]
    assert pick(run(tmp_path, rules, events), "at", "rule") == [
        (at(0), "open-lead-on-pricing"),
        (at(1), "lifecycle.customer"),
        (at(2), "customer-on-pricing"),
    ]


def test_score_in_trigger_when_reads_the_score_after_the_events_points(tmp_path: Path) -> None:
    rules = _rules("""
        triggers:
          - id: warm
            when: {page: {}, score: {at_least: 50, less_than: 90}}
            then: [{notify: {channel: sales, template: t}}]
        """)
    events = [page("u1", at(0)), page("u1", at(1)), page("u1", at(2))]  # 30, 60, 90
    records = run(tmp_path, rules, events)
    assert pick([r for r in records if r["rule"] == "warm"], "score") == [(60,)]


def _problems(tmp_path: Path, rules: str) -> list[str]:
    rules_dir, config_dir = write_rules(tmp_path, rules)
    with pytest.raises(RuleError) as caught:
        load_rules(rules_dir, config_dir, references="warn")
    return [p.message for p in caught.value.problems]


def test_stage_and_score_in_trigger_when_are_checked(tmp_path: Path) -> None:
    messages = _problems(
        tmp_path,
        _rules("""
        triggers:
          - id: a
            when: {page: {}, stage: custmer, score: {glob: "1*"}}
            then: [{notify: {channel: sales, template: t}}]
        """),
    )
    assert any(m.startswith("unknown stage 'custmer' (did you mean 'customer'?)") for m in messages)
    assert any(m.startswith("score: 'glob' does not apply to a number") for m in messages)


def test_stage_and_score_in_trigger_unless_are_refused_by_check(tmp_path: Path) -> None:
    messages = _problems(
        tmp_path,
        _rules("""
        triggers:
          - id: a
            when: {page: {}}
            unless: {page: {}, within: 1d, stage: lead}
            then: [{notify: {channel: sales, template: t}}]
        """),
    )
    assert any(m.startswith("unknown key 'stage'") for m in messages)


@pytest.mark.parametrize("matcher", ["python", "durable"])
def test_unless_any_fires_when_no_event_of_any_kind_happened_within(
    tmp_path: Path, matcher: str
) -> None:
    rules = _rules("""
        triggers:
          - id: gone-quiet
            when: {event: Guide Downloaded}
            unless: {any: {}, within: 14d}
            then: [{notify: {channel: sales, template: t}}]
        """)
    events = [
        track("quiet", at(0), "Guide Downloaded"),
        track("busy", at(0), "Guide Downloaded"),
        identify("busy", at(10), title="CTO"),  # an identify is activity too
        track("other", at(0), "Guide Downloaded"),
        track("other", at(20), "Anything"),  # after the 14 days: too late
    ]
    records = run(tmp_path, rules, events, until=at(30), matcher=matcher)
    fired = [(r["prospect"], r["at"]) for r in records if r["rule"] == "gone-quiet"]
    assert sorted(fired) == [("other", at(14)), ("quiet", at(14))]


def test_unless_any_stands_alone(tmp_path: Path) -> None:
    rules = _rules("""
        triggers:
          - id: a
            when: {event: X}
            unless: {any: {event: Y}, page: {}, within: 1d}
            then: [{notify: {channel: sales, template: t}}]
        """)
    messages = sorted(_problems(tmp_path, rules))
    assert messages == [
        "any stands alone: remove 'page'",
        "any takes no conditions: write `any: {}`",
    ]


def test_deal_lost_moves_the_prospect_to_the_configured_stage(tmp_path: Path) -> None:
    rules = BASE + "      deal_lost_stage: recycled\n"
    events = [
        page("u1", at(0)),
        page("u1", at(0, 1)),  # mql
        track("u1", at(1), "Lead Qualified"),
        track("u1", at(2), "Deal Lost"),
        page("u1", at(3)),  # recyclable: from recycled, 90 crosses nothing from below
    ]
    replayed = Replayed(tmp_path, rules, events)
    assert pick(replayed.records, "rule", "stage") == [
        ("lifecycle.mql", "mql"),
        ("lifecycle.sql", "sql"),
        ("lifecycle.recycled", "recycled"),
    ]
    assert replayed.explain("u1", at(4))["history"][-1]["reason"] == "deal lost"


def test_deal_lost_without_the_setting_changes_no_stage(tmp_path: Path) -> None:
    events = [track("u1", at(0), "Lead Qualified"), track("u1", at(1), "Deal Lost")]
    assert pick(run(tmp_path, BASE, events), "stage") == [("sql",)]


def test_lead_rejected_without_a_reason_is_recorded_with_the_default_reason(
    tmp_path: Path,
) -> None:
    rules = BASE + "      on_reject: {default_reason: unspecified}\n"
    events = [
        track("u1", at(0), "Lead Rejected"),
        track("u2", at(0), "Lead Rejected", reason="no budget"),
    ]
    replayed = Replayed(tmp_path, rules, events)
    assert replayed.explain("u1", at(1))["reject_reason"] == "unspecified"
    assert replayed.explain("u1", at(1))["history"][-1]["reason"] == "unspecified"
    assert replayed.explain("u2", at(1))["reject_reason"] == "no budget"
