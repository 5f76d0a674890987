"""Contract "Triggers" (`times: N, within: D`: fires when at least N matching events not used
up lie within the last D) for late events, in the daemon's order (`replay --order received`).
docs/rules.md, "Late events": a late event fires the trigger when it completes a window
`[x - D, x]` holding its timestamp; matching events older than 2 x D before the newest are
forgotten (the state stays bounded), so an event more than D late may miss windows."""

from __future__ import annotations

from pathlib import Path

from tests.core.contract_support import Replayed, received
from tests.scenario import at, pick, track


def rules(times: int) -> str:
    return f"""
    triggers:
      - id: hot
        when: {{event: Visit, times: {times}, within: 1d}}
        then:
          - notify: {{channel: sales, template: x}}
    """


def fired(tmp_path: Path, times: int, visits: list[tuple[float, float]]) -> list[tuple[str]]:
    """The `at` of each firing, for visits given as (timestamp, received) in hours."""
    events = [received(track("u1", at(hours=ts), "Visit"), at(hours=got)) for ts, got in visits]
    replayed = Replayed(tmp_path, rules(times), events, order="received")
    return pick(replayed.records, "at")


def test_triggers_a_late_event_fires_with_an_unused_event_less_than_two_periods_old(
    tmp_path: Path,
) -> None:
    # 0h is 36h (< 2d) before the newest, so kept: the visit at 10h, received at 37h,
    # completes [-14h, 10h] with it (decided at the prospect's latest time, 36h).
    assert fired(tmp_path, 2, [(0, 0), (36, 36), (10, 37)]) == [(at(hours=36),)]


def test_triggers_an_unused_event_more_than_two_periods_older_than_the_newest_is_forgotten(
    tmp_path: Path,
) -> None:
    # 0h is 60h (> 2d) before the newest: forgotten, so the visit at 10h finds itself alone
    # in [-14h, 10h], and [36h, 60h] holds only the visit at 60h.
    assert fired(tmp_path, 2, [(0, 0), (60, 60), (10, 61)]) == []


def test_triggers_a_late_event_counts_only_the_events_within_the_window_it_completes(
    tmp_path: Path,
) -> None:
    # Three within a day: the late visit at 28h lies in [4h, 28h] with nothing else and in
    # [12h, 36h] with the visit at 36h only (0h is outside both): no firing. The visit at
    # 40h then makes [16h, 40h] hold 28h, 36h and 40h.
    visits = [(0, 0), (36, 36), (28, 38), (40, 40)]
    assert fired(tmp_path, 3, visits) == [(at(hours=40),)]


def test_triggers_an_event_at_the_newest_instant_also_forgets_events_two_periods_older(
    tmp_path: Path,
) -> None:
    # The visit at 0h arrives after the one at 60h, so nothing forgot it yet; a second visit
    # at 60h fires with the first and forgets it (60h before). The late visit at 10h then
    # finds no other unused visit within a day of it.
    visits = [(60, 60), (0, 61), (60, 62), (10, 63)]
    assert fired(tmp_path, 2, visits) == [(at(hours=60),)]
