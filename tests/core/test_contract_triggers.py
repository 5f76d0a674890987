"""Contract "Triggers": `times` within a window (its edge included), used-up events,
`cooldown`, `unless` absence windows, and the same decisions whatever the input order."""

from __future__ import annotations

from pathlib import Path

from tests.core.contract_support import Replayed, received, shuffled
from tests.scenario import at, page, pick, run, track

TWICE = """
    triggers:
      - id: twice
        when: {event: Visit, times: 2, within: 1d}
        then:
          - notify: {channel: sales, template: x}
    """

TWICE_COOLING = """
    triggers:
      - id: twice
        when: {event: Visit, times: 2, within: 1d}
        cooldown: 2d
        then:
          - notify: {channel: sales, template: x}
    """


def fired(tmp_path: Path, rules: str, hours: list[float], **kw: object) -> list[str]:
    events = [track("u1", at(hours=h), "Visit") for h in hours]
    return [r["at"] for r in run(tmp_path, rules, events, **kw) if r["action"] == "notify"]


def test_triggers_times_fires_when_the_nth_event_pushes_an_older_one_out(tmp_path: Path) -> None:
    # 47h and 48h come during the cooldown (1h to 49h) and stay unused; at 71.5h the one
    # at 47h leaves the window, and 48h and 71.5h are two within a day
    assert fired(tmp_path, TWICE_COOLING, [0, 1, 47, 48, 71.5]) == [at(hours=1), at(hours=71.5)]
    three = TWICE_COOLING.replace("times: 2", "times: 3")
    hours = [0, 1, 2, 46, 47, 48, 70.5]
    assert fired(tmp_path / "b", three, hours) == [at(hours=2), at(hours=70.5)]


def test_triggers_times_with_the_only_unused_event_leaving_the_window(tmp_path: Path) -> None:
    assert fired(tmp_path, TWICE, [0, 25, 26]) == [at(hours=26)]
    assert fired(tmp_path / "b", TWICE_COOLING, [0, 25, 26]) == [at(hours=26)]
    assert fired(tmp_path / "c", TWICE_COOLING, [0, 30, 60, 61]) == [at(hours=61)]


def test_triggers_an_event_exactly_within_earlier_is_within(tmp_path: Path) -> None:
    assert fired(tmp_path, TWICE, [0, 24]) == [at(hours=24)]
    assert fired(tmp_path / "b", TWICE, [0, 24.001]) == []


def test_triggers_a_firing_uses_up_every_event_in_the_window(tmp_path: Path) -> None:
    assert fired(tmp_path, TWICE, [0, 1, 2, 3, 4]) == [at(hours=1), at(hours=3)]
    three = TWICE.replace("times: 2", "times: 3")
    assert fired(tmp_path / "b", three, [0, 1, 2, 3, 4, 5, 6]) == [at(hours=2), at(hours=5)]


def test_triggers_events_at_the_same_instant_count_separately(tmp_path: Path) -> None:
    assert fired(tmp_path, TWICE, [5, 5, 5]) == [at(hours=5)]
    three = TWICE.replace("times: 2", "times: 3")
    assert fired(tmp_path / "b", three, [0, 5, 5]) == [at(hours=5)]


def test_triggers_cooldown_fires_nothing_and_uses_nothing_up(tmp_path: Path) -> None:
    # fires at 1h; 47h and 48h fall in the cooldown (until 49h) and stay unused
    assert fired(tmp_path, TWICE_COOLING, [0, 1, 47, 48, 49, 50]) == [at(hours=1), at(hours=49)]
    # the cooldown ends exactly at last firing + cooldown
    assert fired(tmp_path / "b", TWICE_COOLING, [0, 1, 48.99, 49]) == [at(hours=1), at(hours=49)]
    assert fired(tmp_path / "c", TWICE_COOLING, [0, 1, 48, 48.99]) == [at(hours=1)]


def test_triggers_cooldown_without_times(tmp_path: Path) -> None:
    rules = """
    triggers:
      - id: each
        when: {event: Visit}
        cooldown: 1d
        then:
          - notify: {channel: sales, template: x}
    """
    assert fired(tmp_path, rules, [0, 1, 23.99, 24, 30, 48]) == [
        at(hours=0),
        at(hours=24),
        at(hours=48),
    ]


def test_triggers_without_times_fire_on_each_matching_event_per_prospect(tmp_path: Path) -> None:
    rules = """
    triggers:
      - id: each
        when: {event: Visit}
        then:
          - notify: {channel: sales, template: x}
    """
    events = [track("u1", at(0), "Visit"), track("u2", at(0, 1), "Visit")]
    events += [track("u1", at(0, 2), "Other"), track("u1", at(0, 3), "Visit")]
    assert pick(run(tmp_path, rules, events), "at", "prospect") == [
        (at(0), "u1"),
        (at(0, 1), "u2"),
        (at(0, 3), "u1"),
    ]


def test_triggers_times_counts_per_prospect(tmp_path: Path) -> None:
    events = [track("u1", at(0), "Visit"), track("u2", at(0, 1), "Visit")]
    events.append(track("u2", at(0, 2), "Visit"))
    assert pick(run(tmp_path, TWICE, events), "at", "prospect") == [(at(0, 2), "u2")]


def test_triggers_times_and_cooldown_in_a_replay_do_not_depend_on_input_order(
    tmp_path: Path,
) -> None:
    """A replay processes events in timestamp order, so late, out-of-order lines in the file
    decide exactly what sorted input decides."""
    rules = (
        TWICE_COOLING
        + """
      - id: absent
        when: {event: Guide}
        unless: {page: {}, within: 1d}
        then:
          - notify: {channel: sales, template: y}
    """
    )
    events = []
    hours = [0, 2, 20, 25, 26, 40, 47, 50, 51, 75, 76, 77, 120, 121]
    for i, h in enumerate(hours):
        who = "u1" if i % 4 else "u2"
        events.append(track(who, at(hours=h), "Visit"))
        if i % 3 == 0:
            events.append(track(who, at(hours=h, minutes=1), "Guide"))
        if i % 5 == 0:
            events.append(page(who, at(hours=h, minutes=30)))
    expected = run(tmp_path / "sorted", rules, events, until=at(10))
    assert len([r for r in expected if r["rule"] == "twice"]) >= 2
    assert [r for r in expected if r["rule"] == "absent"]
    for seed in range(3):
        assert run(tmp_path / f"s{seed}", rules, shuffled(events, seed), until=at(10)) == expected
    late = list(reversed(events))
    assert run(tmp_path / "reversed", rules, late, until=at(10)) == expected


ABSENT = """
    triggers:
      - id: guide-then-silence
        when: {event: Guide}
        unless: {page: {}, within: 1d}
        then:
          - notify: {channel: sales, template: x}
    """


def test_triggers_unless_fires_at_t0_plus_d_when_nothing_came(tmp_path: Path) -> None:
    events = [track("u1", at(0), "Guide"), track("u1", at(0, 5), "Other")]
    assert pick(run(tmp_path, ABSENT, events, until=at(3)), "at", "rule") == [
        (at(1), "guide-then-silence")
    ]


def test_triggers_unless_window_is_after_t0_and_includes_its_end(tmp_path: Path) -> None:
    at_t0 = [track("u1", at(0), "Guide"), page("u1", at(0))]
    assert pick(run(tmp_path / "a", ABSENT, at_t0, until=at(3)), "at") == [(at(1),)]
    at_end = [track("u1", at(0), "Guide"), page("u1", at(1))]
    assert run(tmp_path / "b", ABSENT, at_end, until=at(3)) == []
    after = [track("u1", at(0), "Guide"), page("u1", at(1, seconds=1))]
    assert pick(run(tmp_path / "c", ABSENT, after, until=at(3)), "at") == [(at(1),)]
    inside = [track("u1", at(0), "Guide"), page("u1", at(0, 12))]
    assert run(tmp_path / "d", ABSENT, inside, until=at(3)) == []


def test_triggers_one_unless_event_cancels_every_pending_window_it_falls_in(
    tmp_path: Path,
) -> None:
    events = [
        track("u1", at(0), "Guide"),
        track("u1", at(0, 10), "Guide"),
        track("u1", at(0, 20), "Guide"),
        page("u1", at(1, 5)),  # within the windows of 10h and 20h, after the first ended
    ]
    assert pick(run(tmp_path, ABSENT, events, until=at(5)), "at") == [(at(1),)]


def test_triggers_unless_events_of_another_prospect_do_not_cancel(tmp_path: Path) -> None:
    events = [track("u1", at(0), "Guide"), page("u2", at(0, 1))]
    assert pick(run(tmp_path, ABSENT, events, until=at(3)), "at", "prospect") == [(at(1), "u1")]


def test_triggers_unless_of_one_trigger_does_not_cancel_another(tmp_path: Path) -> None:
    rules = (
        ABSENT
        + """
      - id: demo-then-silence
        when: {event: Demo}
        unless: {event: Reply, within: 1d}
        then:
          - notify: {channel: sales, template: y}
    """
    )
    events = [
        track("u1", at(0), "Guide"),
        track("u1", at(0), "Demo"),
        track("u1", at(0, 1), "Reply"),  # cancels only the demo's window
        track("u2", at(0), "Demo"),
        page("u2", at(0, 1)),  # cancels nothing of the demo
    ]
    assert pick(run(tmp_path, rules, events, until=at(3)), "at", "prospect", "rule") == [
        (at(1), "u1", "guide-then-silence"),
        (at(1), "u2", "demo-then-silence"),
    ]


def test_triggers_unless_with_times_and_cooldown(tmp_path: Path) -> None:
    rules = """
    triggers:
      - id: quiet-after-two
        when: {event: Guide, times: 2, within: 1d}
        unless: {page: {}, within: 1d}
        cooldown: 3d
        then:
          - notify: {channel: sales, template: x}
    """
    events = [
        track("u1", at(0), "Guide"),
        track("u1", at(0, 1), "Guide"),  # t0 = 1h: fires at 1d1h
        track("u1", at(0, 2), "Guide"),
        track("u1", at(0, 3), "Guide"),  # t0 = 3h, but at 1d3h it is cooling down
        track("u1", at(5), "Guide"),
        track("u1", at(5, 1), "Guide"),  # t0 = 5d1h: fires at 6d1h
    ]
    assert pick(run(tmp_path, rules, events, until=at(10)), "at") == [(at(1, 1),), (at(6, 1),)]


def test_triggers_a_late_event_is_placed_in_the_windows_of_its_timestamp(tmp_path: Path) -> None:
    """The daemon's order (`replay --order received`): a late event still counts in the
    window of its own timestamp, and in the window a later event closes."""
    on_time = [
        received(track("u1", at(hours=0), "Visit"), at(hours=0)),
        received(track("u1", at(hours=30), "Visit"), at(hours=30)),
    ]
    records = Replayed(tmp_path / "none", TWICE, on_time, order="received").records
    assert records == []
    for late_hour, name in [(20, "before"), (25, "after")]:
        late = received(track("u1", at(hours=late_hour), "Visit"), at(hours=31))
        records = Replayed(tmp_path / name, TWICE, [*on_time, late], order="received").records
        assert pick(records, "rule") == [("twice",)], late_hour
    # once used up, the same events do not fire again
    again = received(track("u1", at(hours=1), "Visit"), at(hours=32))
    late = received(track("u1", at(hours=20), "Visit"), at(hours=31))
    records = Replayed(tmp_path / "again", TWICE, [*on_time, late, again], order="received")
    assert pick(records.records, "rule") == [("twice",)]


def test_triggers_an_unless_event_reaches_every_trigger_with_a_pending_window(
    tmp_path: Path,
) -> None:
    rules = """
    triggers:
      - id: each-visit
        when: {event: Visit}
        then:
          - notify: {channel: log, template: v}
      - id: guide-then-silence
        when: {event: Guide}
        unless: {page: {}, within: 1d}
        then:
          - notify: {channel: sales, template: x}
    """
    events = [
        track("u1", at(0), "Visit"),  # this trigger's counts come first, with no window
        track("u1", at(0, 1), "Guide"),
        page("u1", at(0, 2)),  # cancels the guide's window
    ]
    records = run(tmp_path, rules, events, until=at(3))
    assert pick(records, "rule") == [("each-visit",)]
