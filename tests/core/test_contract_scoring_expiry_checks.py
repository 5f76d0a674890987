"""Contract "Scoring" (points from an event at E with `expires_after: D` count while T < E + D)
and "Lifecycle" (a score reaching `mql_threshold` from below makes an mql): negative points
that expire raise the score, so their expiry is checked at that instant; expiring points that
cannot raise the score set no timer (docs/rules.md, "Late events": a timer makes later events
of its prospect late)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.contract_support import PING, Replayed, received
from tests.scenario import at, pick, run, track


def test_scoring_the_expiry_of_a_single_negative_point_is_checked_when_it_passes(
    tmp_path: Path,
) -> None:
    rules = """
    scoring:
      rules:
        - {id: typo, when: {event: Typo}, points: -1, expires_after: 1d}
        - {id: demo, when: {event: Demo}, points: 80}
    lifecycle:
      mql_threshold: 80
      on_mql:
        - notify: {channel: sales, template: new-mql}
    """
    events = [track("u1", at(0), "Typo"), track("u1", at(0, 1), "Demo")]  # 79; 80 at 1d
    records = run(tmp_path, rules, events, until=at(3))
    assert pick(records, "at", "action", "score") == [
        (at(1), "set_stage", 80),
        (at(1), "notify", 80),
    ]


@pytest.mark.parametrize("points", [0, 5])
def test_scoring_points_that_cannot_raise_the_score_when_they_expire_set_no_timer(
    tmp_path: Path, points: int
) -> None:
    # Received order (the daemon's): the visit's points expire at 1d, before the Ping is
    # received at 2d. Nothing was evaluated for u1 after 0h then, so the Ping, stamped 12h,
    # is not late and is decided at its own timestamp.
    rules = (
        f"""
    scoring:
      rules:
        - {{id: visit, when: {{event: Visit}}, points: {points}, expires_after: 1d}}
    lifecycle:
      mql_threshold: 100
    """
        + PING
    )
    events = [
        received(track("u1", at(0), "Visit"), at(0)),
        received(track("u1", at(0, 12), "Ping"), at(2)),
    ]
    replayed = Replayed(tmp_path, rules, events, order="received")
    assert pick(replayed.records, "at", "rule", "score") == [(at(0, 12), "ping", points)]


def test_scoring_a_second_expiry_at_the_pending_checks_instant_keeps_the_checks_place(
    tmp_path: Path,
) -> None:
    # Timers due at one instant fire in the order they were scheduled: the check pending
    # for 1d runs before the sequence step due then, so the step's send sees the mql.
    rules = """
    scoring:
      rules:
        - {id: churn, when: {event: Churn Risk}, points: -10, expires_after: 1d}
        - {id: bounce, when: {event: Bounce}, points: -10, expires_after: 22h}
        - {id: demo, when: {event: Demo}, points: 100}
    lifecycle:
      mql_threshold: 90
      on_mql:
        - notify: {channel: sales, template: new-mql}
    triggers:
      - id: guide
        when: {event: Guide}
        then:
          - start_sequence: drip
    sequences:
      drip:
        steps:
          - wait: 23h
          - send: {channel: email, template: two}
    """
    events = [
        track("u1", at(0), "Churn Risk"),  # the expiry check: due at 1d
        track("u1", at(0, 1), "Guide"),  # the step: due at 1d, scheduled after the check
        track("u1", at(0, 2), "Bounce"),  # expires at 1d too: the pending check covers it
        track("u1", at(0, 4), "Demo"),  # 80; 100 at 1d
    ]
    records = run(tmp_path, rules, events, until=at(2))
    assert pick([r for r in records if r["at"] == at(1)], "action", "rule", "stage") == [
        ("set_stage", "lifecycle.mql", "mql"),
        ("notify", "lifecycle.mql", "mql"),
        ("send", "sequence:drip", "mql"),
    ]
