"""Contract "Triggers"."""

from __future__ import annotations

from pathlib import Path

from tests.scenario import at, page, pick, run, track


def notify(trigger: str) -> str:
    return f"""
    triggers:
      - id: t
{trigger}
        then:
          - notify: {{channel: sales, template: x}}
    """


def fired(records: list[dict]) -> list[str]:
    return [r["at"] for r in records if r["rule"] == "t"]


def test_without_times_fires_on_each_matching_event(tmp_path: Path) -> None:
    rules = notify("        when: {event: Video Watched, where: {category: case-study}}")
    events = [
        track("u1", at(0), "Video Watched", category="case-study"),
        track("u1", at(1), "Video Watched", category="webinar"),
        track("u1", at(2), "Video Watched", category="case-study"),
    ]
    assert fired(run(tmp_path, rules, events)) == [at(0), at(2)]


def test_times_within_fires_when_n_unused_events_lie_within_d(tmp_path: Path) -> None:
    rules = notify("        when: {page: {path: {glob: '/pricing*'}}, times: 3, within: 7d}")
    events = [page("u1", at(d), "/pricing") for d in (0, 3, 8)]  # day 0 falls out of the window
    events += [page("u1", at(9), "/pricing/enterprise")]
    assert fired(run(tmp_path, rules, events)) == [at(9)]


def test_an_event_exactly_d_earlier_is_within(tmp_path: Path) -> None:
    rules = notify("        when: {page: {path: /pricing}, times: 2, within: 7d}")
    events = [page("u1", at(0), "/pricing"), page("u1", at(7), "/pricing")]
    assert fired(run(tmp_path, rules, events)) == [at(7)]


def test_firing_uses_up_the_events_it_counted(tmp_path: Path) -> None:
    rules = notify("        when: {page: {path: /pricing}, times: 3, within: 7d}")
    events = [page("u1", at(0, h), "/pricing") for h in range(7)]
    # fires on the 3rd and the 6th; the 7th has only one unused partner
    assert fired(run(tmp_path, rules, events)) == [at(0, 2), at(0, 5)]


def test_cooldown_fires_nothing_and_uses_nothing_up(tmp_path: Path) -> None:
    rules = notify(
        "        when: {page: {path: /pricing}, times: 2, within: 7d}\n        cooldown: 2d"
    )
    events = [page("u1", at(0, h), "/pricing") for h in (0, 1)]  # fires at hour 1
    events += [page("u1", at(1), "/pricing"), page("u1", at(1, 1), "/pricing")]  # in cooldown
    events += [page("u1", at(2, 1), "/pricing")]  # cooldown over: 3 unused within 7d
    events += [page("u1", at(2, 2), "/pricing")]  # just used up, cooldown again
    assert fired(run(tmp_path, rules, events)) == [at(0, 1), at(2, 1)]


def test_cooldown_without_times(tmp_path: Path) -> None:
    rules = notify("        when: {event: Demo Requested}\n        cooldown: 1d")
    events = [
        track("u1", at(0), "Demo Requested"),
        track("u1", at(0, 23), "Demo Requested"),
        track("u1", at(1), "Demo Requested"),
    ]
    assert fired(run(tmp_path, rules, events)) == [at(0), at(1)]


def test_cooldown_is_per_prospect(tmp_path: Path) -> None:
    rules = notify("        when: {event: Demo Requested}\n        cooldown: 1d")
    events = [track("u1", at(0), "Demo Requested"), track("u2", at(0, 1), "Demo Requested")]
    assert pick(run(tmp_path, rules, events), "prospect") == [("u1",), ("u2",)]


UNLESS = "        when: {event: Guide Downloaded}\n        unless: {page: {}, within: 30d}"


def test_unless_fires_at_t0_plus_d_when_nothing_matched(tmp_path: Path) -> None:
    events = [track("u1", at(0, 5), "Guide Downloaded"), track("u1", at(40), "Other")]
    assert fired(run(tmp_path, notify(UNLESS), events)) == [at(30, 5)]


def test_unless_event_within_the_window_cancels(tmp_path: Path) -> None:
    events = [
        track("u1", at(0), "Guide Downloaded"),
        page("u1", at(29)),
        track("u1", at(40), "Other"),
    ]
    assert fired(run(tmp_path, notify(UNLESS), events)) == []


def test_unless_event_exactly_at_t0_plus_d_cancels(tmp_path: Path) -> None:
    events = [track("u1", at(0), "Guide Downloaded"), page("u1", at(30))]
    assert fired(run(tmp_path, notify(UNLESS), events)) == []


def test_unless_event_at_t0_itself_does_not_cancel(tmp_path: Path) -> None:
    events = [
        track("u1", at(0), "Guide Downloaded"),
        page("u1", at(0)),
        track("u1", at(31), "Other"),
    ]
    assert fired(run(tmp_path, notify(UNLESS), events)) == [at(30)]


def test_unless_of_another_prospect_does_not_cancel(tmp_path: Path) -> None:
    events = [
        track("u1", at(0), "Guide Downloaded"),
        page("u2", at(1)),
        track("u1", at(31), "Other"),
    ]
    assert fired(run(tmp_path, notify(UNLESS), events)) == [at(30)]


def test_unless_pending_checks_are_independent(tmp_path: Path) -> None:
    events = [
        track("u1", at(0), "Guide Downloaded"),
        track("u1", at(10), "Guide Downloaded"),
        track("u1", at(50), "Other"),
    ]
    assert fired(run(tmp_path, notify(UNLESS), events)) == [at(30), at(40)]


def test_unless_with_times_uses_events_up_when_it_would_have_fired(tmp_path: Path) -> None:
    rules = notify(
        "        when: {event: Guide Downloaded, times: 2, within: 7d}\n        unless: {event: Email Replied, within: 3d}"
    )
    events = [
        track("u1", at(0), "Guide Downloaded"),
        track("u1", at(1), "Guide Downloaded"),
        track("u1", at(2), "Guide Downloaded"),
    ]
    events += [track("u1", at(10), "Other")]
    assert fired(run(tmp_path, rules, events)) == [at(4)]


def test_unless_respects_cooldown_at_firing_time(tmp_path: Path) -> None:
    rules = notify(UNLESS + "\n        cooldown: 20d")
    events = [
        track("u1", at(0), "Guide Downloaded"),
        track("u1", at(5), "Guide Downloaded"),
        track("u1", at(60), "Other"),
    ]
    assert fired(run(tmp_path, rules, events)) == [at(30)]


def test_then_runs_its_actions_in_order(tmp_path: Path) -> None:
    rules = """
    triggers:
      - id: t
        when: {event: Demo Requested}
        then:
          - notify: {channel: sales, template: a}
          - send: {channel: email, template: b}
          - start_sequence: s
          - notify: {channel: crm, template: c}
    sequences:
      s:
        steps:
          - send: {channel: email, template: s1}
          - wait: 1d
          - send: {channel: email, template: s2}
    """
    records = run(tmp_path, rules, [track("u1", at(0), "Demo Requested")])
    assert pick(records, "action", "rule", "template", "sequence", "step") == [
        ("notify", "t", "a", None, None),
        ("send", "t", "b", None, None),
        ("start_sequence", "t", None, "s", None),
        ("send", "sequence:s", "s1", "s", 1),
        ("notify", "t", "c", None, None),
    ]
