"""Contract "Scoring" (`limit: {times: N, per: D}`: at most N awards in any rolling D) for late
events, in the daemon's order (`replay --order received`). docs/rules.md, "Late events":
a late event is refused when a window of D holding its timestamp is full; awards older than
2 x D before the newest are forgotten (the state stays bounded), so an event more than D late
may miss a window."""

from __future__ import annotations

from pathlib import Path

from tests.core.contract_support import PING, Replayed, received
from tests.scenario import at, pick, track

ONCE_A_DAY = (
    """
    scoring:
      rules:
        - {id: visit, when: {event: Visit}, points: 10, limit: {times: 1, per: 1d}}
    """
    + PING
)


def score_after(tmp_path: Path, newest_hours: int, late_hours: int) -> int:
    """Visits at 0h and `newest_hours` (in order), then one at `late_hours` received last."""
    events = [
        received(track("u1", at(hours=0), "Visit"), at(hours=0)),
        received(track("u1", at(hours=newest_hours), "Visit"), at(hours=newest_hours)),
        received(track("u1", at(hours=late_hours), "Visit"), at(hours=newest_hours + 1)),
        received(track("u1", at(hours=80), "Ping"), at(hours=80)),
    ]
    replayed = Replayed(tmp_path, ONCE_A_DAY, events, order="received")
    ((score,),) = pick(replayed.records, "score")
    return int(score)


def test_scoring_limit_an_award_less_than_two_periods_before_the_newest_still_counts(
    tmp_path: Path,
) -> None:
    # The award at 0h is 36h (< 2d) before the newest: kept, and the visit at 10h, 26 hours
    # late, shares the day [-14h, 10h] with it (and no day with the award at 36h).
    assert score_after(tmp_path, newest_hours=36, late_hours=10) == 20


def test_scoring_limit_an_award_more_than_two_periods_before_the_newest_is_forgotten(
    tmp_path: Path,
) -> None:
    # The award at 0h is 60h (> 2d) before the newest at 60h: forgotten, so the visit at
    # 10h, 50 hours late, finds its day [-14h, 10h] empty and is awarded.
    assert score_after(tmp_path, newest_hours=60, late_hours=10) == 30
