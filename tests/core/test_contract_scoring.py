"""Contract "Scoring": limits, expiry at its edge, fit rules, and the reasons behind a score."""

from __future__ import annotations

from pathlib import Path

from tests.core.contract_support import PING, Replayed, received, shuffled
from tests.scenario import at, identify, page, pick, run, track


def test_scoring_limit_counts_awards_in_any_rolling_window_with_its_edge_inclusive(
    tmp_path: Path,
) -> None:
    rules = (
        """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 10, limit: {times: 2, per: 1d}}
    """
        + PING
    )
    hours = [0, 1, 2, 24, 25, 25.5, 26, 49.5]
    events = []
    for h in hours:
        events += [page("u1", at(hours=h)), track("u1", at(hours=h, seconds=1), "Ping")]
    # 2h: two awards in the last day; 24h: the award at 0h is exactly a day old and still
    # counts; 25h: only the one at 1h is left; 26h: 25h and 25.5h; 49.5h: 25.5h is 24h old.
    assert [r["score"] for r in run(tmp_path, rules, events)] == [10, 20, 20, 20, 30, 40, 40, 50]


def test_scoring_limit_without_per_is_a_lifetime_limit(tmp_path: Path) -> None:
    rules = (
        """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 10, limit: {times: 2}}
        - {id: demo, when: {event: Demo}, points: 1, limit: {times: 1}}
    """
        + PING
    )
    events = []
    for day in [0, 1, 100, 400]:
        events += [page("u1", at(day)), track("u1", at(day, 1), "Demo")]
        events.append(track("u1", at(day, 2), "Ping"))
    assert [r["score"] for r in run(tmp_path, rules, events)] == [11, 21, 21, 21]


def test_scoring_limits_are_per_prospect_and_per_rule(tmp_path: Path) -> None:
    rules = (
        """
    scoring:
      rules:
        - {id: a, when: {page: {}}, points: 1, limit: {times: 1, per: 7d}}
        - {id: b, when: {page: {}}, points: 10, limit: {times: 2, per: 7d}}
    """
        + PING
    )
    events = [page(who, at(0, i)) for i in range(3) for who in ("u1", "u2")]
    events += [track("u1", at(1), "Ping"), track("u2", at(1), "Ping")]
    assert pick(run(tmp_path, rules, events), "prospect", "score") == [("u1", 21), ("u2", 21)]


def test_scoring_limits_in_a_replay_do_not_depend_on_the_input_order(tmp_path: Path) -> None:
    """A replay processes events in timestamp order: a file in any order decides the same."""
    rules = (
        """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 10, limit: {times: 2, per: 1d}}
        - {id: demo, when: {event: Demo}, points: 25, limit: {times: 1}}
    lifecycle:
      mql_threshold: 60
    """
        + PING
    )
    events = []
    for i, h in enumerate([0, 3, 5, 20, 24, 27, 30, 50, 51, 52]):
        who = "u1" if i % 3 else "u2"
        events += [page(who, at(hours=h)), track(who, at(hours=h, minutes=5), "Ping")]
        if i % 4 == 0:
            events.append(track(who, at(hours=h, minutes=1), "Demo"))
    expected = run(tmp_path / "sorted", rules, events)
    assert len(expected) > len(events) // 2
    for seed in range(3):
        late = shuffled(events, seed)
        assert run(tmp_path / f"shuffled-{seed}", rules, late) == expected
    reversed_input = list(reversed(events))
    assert run(tmp_path / "reversed", rules, reversed_input) == expected


def test_scoring_points_count_while_t_is_before_e_plus_d(tmp_path: Path) -> None:
    rules = (
        """
    scoring:
      expires_after: 2d
      rules:
        - {id: visit, when: {page: {}}, points: 10, expires_after: 1d}
        - {id: demo, when: {event: Demo}, points: 5}
    """
        + PING
    )
    events = [
        page("u1", at(0)),
        track("u1", at(0), "Demo"),
        track("u1", at(1, seconds=-1), "Ping"),
        track("u1", at(1), "Ping"),  # E + D: the visit no longer counts
        track("u1", at(2, seconds=-1), "Ping"),
        track("u1", at(2), "Ping"),  # the demo's default 2d is over too
    ]
    assert [r["score"] for r in run(tmp_path, rules, events)] == [15, 5, 5, 0]


def test_scoring_a_fit_rule_counts_again_when_its_traits_match_again(tmp_path: Path) -> None:
    rules = (
        """
    scoring:
      rules:
        - {id: senior, when: {trait: {title: VP}}, points: 20}
        - {id: big, when: {trait: {size: {at_least: 100}}}, points: 7}
    """
        + PING
    )
    steps = [
        {"title": "VP"},
        {"title": "VP"},  # never counts twice
        {"title": "Engineer"},
        {"title": "VP", "size": 100},
        {"size": 99},
        {"size": 500},
    ]
    events = []
    for i, traits in enumerate(steps):
        events += [identify("u1", at(i), **traits), track("u1", at(i, 1), "Ping")]
    assert [r["score"] for r in run(tmp_path, rules, events)] == [20, 20, 0, 27, 20, 27]


def test_scoring_fit_points_never_expire(tmp_path: Path) -> None:
    rules = (
        """
    scoring:
      expires_after: 1d
      rules:
        - {id: senior, when: {trait: {title: VP}}, points: 20}
        - {id: visit, when: {page: {}}, points: 3}
    """
        + PING
    )
    events = [identify("u1", at(0), title="VP"), page("u1", at(0)), track("u1", at(400), "Ping")]
    assert [r["score"] for r in run(tmp_path, rules, events)] == [20]


def test_scoring_each_reason_carries_the_event_name_and_page(tmp_path: Path) -> None:
    rules = (
        """
    scoring:
      rules:
        - {id: pricing, when: {page: {path: /pricing}}, points: 10, expires_after: 30d}
        - {id: demo, when: {event: Demo Requested}, points: 40}
        - {id: senior, when: {trait: {title: VP}}, points: 20}
    """
        + PING
    )
    visit = page("u1", at(0), "/pricing", name="Pricing", properties={"name": "not this"})
    demo = track("u1", at(1), "Demo Requested", plan="pro")
    who = identify("u1", at(2), title="VP")
    replayed = Replayed(tmp_path, rules, [visit, demo, who, track("u1", at(3), "Ping")])
    report = replayed.explain("u1", at(3))
    assert report["score"] == 70
    shown = [
        (c["rule"], c["kind"], c["points"], c.get("at", c.get("since")), c.get("expires_at"))
        for c in report["contributions"]
    ]
    assert shown == [
        ("senior", "fit", 20, at(2), None),
        ("pricing", "behaviour", 10, at(0), at(30)),
        ("demo", "behaviour", 40, at(1), None),
    ]
    fit, pricing, demo_reason = (c["event"] for c in report["contributions"])
    assert (fit["type"], fit["messageId"], fit["at"]) == ("identify", who["messageId"], at(2))
    assert (pricing["type"], pricing["messageId"], pricing["at"]) == (
        "page",
        visit["messageId"],
        at(0),
    )
    assert (pricing["path"], pricing["name"]) == ("/pricing", "Pricing")
    assert "event" not in pricing
    assert (demo_reason["type"], demo_reason["event"], demo_reason["messageId"]) == (
        "track",
        "Demo Requested",
        demo["messageId"],
    )
    assert "path" not in demo_reason and "name" not in demo_reason
    # The same reasons reach the templates: biggest first, then oldest.
    (context,) = replayed.contexts
    assert [(r["rule"], r["points"], r["kind"]) for r in context["reasons"]] == [
        ("demo", 40, "behaviour"),
        ("senior", 20, "fit"),
        ("pricing", 10, "behaviour"),
    ]
    assert context["reasons"][2]["event"]["path"] == "/pricing"
    assert context["reasons"][2]["expires_at"] == at(30)
    assert context["reasons"][0]["event"]["event"] == "Demo Requested"
    assert context["reasons"][0]["at"] == at(1)
    assert context["reasons"][1]["at"] == at(2)


def test_scoring_reasons_of_equal_size_come_oldest_first_and_negatives_by_size(
    tmp_path: Path,
) -> None:
    rules = (
        """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 10}
        - {id: bounce, when: {event: Bounce}, points: -15}
        - {id: small, when: {event: Small}, points: 5}
    """
        + PING
    )
    events = [
        page("u1", at(0), "/b"),
        track("u1", at(1), "Small"),
        page("u1", at(2), "/a"),
        track("u1", at(3), "Bounce"),
        track("u1", at(4), "Ping"),
    ]
    (context,) = Replayed(tmp_path, rules, events).contexts
    assert [(r["rule"], r["at"]) for r in context["reasons"]] == [
        ("bounce", at(3)),
        ("visit", at(0)),
        ("visit", at(2)),
        ("small", at(1)),
    ]
    assert context["score"] == 10


def test_scoring_an_earlier_expiry_check_is_not_replaced_by_a_later_one(tmp_path: Path) -> None:
    """Negative points expiring raise the score: an MQL reached then is detected on time."""
    rules = """
    scoring:
      rules:
        - {id: bounce, when: {event: Bounce}, points: -30, expires_after: 1d}
        - {id: churn, when: {event: Churn Risk}, points: -30, expires_after: 5d}
        - {id: demo, when: {event: Demo}, points: 100}
    lifecycle:
      mql_threshold: 50
      on_mql:
        - notify: {channel: sales, template: new-mql}
    """
    events = [
        track("u1", at(0), "Bounce"),
        track("u1", at(0, minutes=1), "Churn Risk"),
        track("u1", at(0, minutes=2), "Demo"),  # 40: below the threshold
    ]
    records = run(tmp_path, rules, events, until=at(10))
    assert pick(records, "at", "action", "score") == [
        (at(1), "set_stage", 70),
        (at(1), "notify", 70),
    ]


def test_scoring_the_expiry_check_after_the_first_finds_the_next_negative_expiry(
    tmp_path: Path,
) -> None:
    rules = """
    scoring:
      rules:
        - {id: small, when: {event: Small}, points: -5, expires_after: 1d}
        - {id: bounce, when: {event: Bounce}, points: -10, expires_after: 2d}
        - {id: churn, when: {event: Churn Risk}, points: -40, expires_after: 3d}
        - {id: demo, when: {event: Demo}, points: 85}
    lifecycle:
      mql_threshold: 80
      on_mql:
        - notify: {channel: sales, template: new-mql}
    """
    events = [
        track("u1", at(0), "Churn Risk"),
        track("u1", at(0, 1), "Small"),
        track("u1", at(0, 2), "Bounce"),
        track("u1", at(0, 3), "Demo"),  # 30; 35 after 1d, 45 after 2d, 85 after 3d
    ]
    records = run(tmp_path, rules, events, until=at(10))
    assert pick(records, "at", "action", "score") == [
        (at(3), "set_stage", 85),
        (at(3), "notify", 85),
    ]


def test_scoring_negative_expiries_at_the_same_time_and_one_already_past(tmp_path: Path) -> None:
    rules = """
    scoring:
      rules:
        - {id: bounce, when: {event: Bounce}, points: -10, expires_after: 1d}
        - {id: demo, when: {event: Demo}, points: 60}
    lifecycle:
      mql_threshold: 55
      on_mql:
        - notify: {channel: sales, template: new-mql}
    """
    events = [
        track("u1", at(0), "Bounce"),
        track("u1", at(0), "Bounce"),
        track("u1", at(0, 1), "Demo"),  # 40
        track("u1", at(0, 2), "Bounce"),  # 30; both at(1) expiries give 50, then 60 at 1d2h
    ]
    records = run(tmp_path, rules, events, until=at(5))
    assert pick(records, "at", "action", "score") == [
        (at(1, 2), "set_stage", 60),
        (at(1, 2), "notify", 60),
    ]


def test_scoring_compaction_never_drops_live_reasons(tmp_path: Path) -> None:
    rules = (
        """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 1, expires_after: 1h}
        - {id: demo, when: {event: Demo}, points: 50}
    """
        + PING
    )
    events = []
    for i in range(120):
        events.append(page("u1", at(hours=2 * i)))
        if i % 10 == 0:
            events.append(track("u1", at(hours=2 * i, minutes=30), "Demo"))
    events.append(page("u1", at(hours=240)))
    events.append(track("u1", at(hours=240, minutes=1), "Ping"))
    replayed = Replayed(tmp_path, rules, events)
    assert pick(replayed.records, "score") == [(12 * 50 + 1,)]
    report = replayed.explain("u1", at(hours=240, minutes=1))
    live = [(c["rule"], c["at"]) for c in report["contributions"] if c["status"] == "active"]
    demos = [("demo", at(hours=20 * k, minutes=30)) for k in range(12)]
    assert sorted(live) == sorted([*demos, ("visit", at(hours=240))])


def test_scoring_reset_on_reject_clears_behaviour_points_and_keeps_fit_points(
    tmp_path: Path,
) -> None:
    rules = (
        """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 30, expires_after: 10d}
        - {id: bounce, when: {event: Bounce}, points: -5, expires_after: 3d}
        - {id: senior, when: {trait: {title: VP}}, points: 20}
    lifecycle:
      mql_threshold: 70
      on_reject:
        reset_score: true
    """
        + PING
    )
    events = [
        identify("u1", at(0), title="VP"),
        page("u1", at(0, 1)),
        track("u1", at(0, 2), "Bounce"),
        page("u1", at(0, 3)),  # 75: mql
        track("u1", at(0, 4), "Lead Rejected", reason="no budget"),
        track("u1", at(0, 5), "Ping"),
        page("u1", at(4)),  # the bounce expired with the rest: no expiry check adds 5 back
        track("u1", at(4, 1), "Ping"),
        page("u1", at(5)),  # 80: mql again, from below
        track("u1", at(5, 1), "Ping"),
    ]
    replayed = Replayed(tmp_path, rules, events, keep_history=True)
    assert pick([r for r in replayed.records if r["rule"] == "ping"], "score", "stage") == [
        (20, "recycled"),
        (50, "recycled"),
        (80, "mql"),
    ]
    report = replayed.explain("u1", at(0, 5))
    statuses = sorted((c["rule"], c.get("status")) for c in report["contributions"])
    assert statuses == [
        ("bounce", "cleared"),
        ("senior", None),
        ("visit", "cleared"),
        ("visit", "cleared"),
    ]


def test_scoring_without_reset_the_points_stay_after_a_reject(tmp_path: Path) -> None:
    rules = (
        """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 30}
    lifecycle:
      mql_threshold: 50
      on_reject:
        reset_score: false
    """
        + PING
    )
    events = [
        page("u1", at(0)),
        page("u1", at(0, 1)),
        track("u1", at(0, 2), "Lead Rejected"),
        track("u1", at(0, 3), "Ping"),
    ]
    assert pick(run(tmp_path, rules, events), "score", "stage")[-1] == (60, "recycled")


def test_scoring_an_mql_reached_when_the_middle_negative_expiry_passes(tmp_path: Path) -> None:
    rules = """
    scoring:
      rules:
        - {id: small, when: {event: Small}, points: -5, expires_after: 1d}
        - {id: bounce, when: {event: Bounce}, points: -10, expires_after: 2d}
        - {id: churn, when: {event: Churn Risk}, points: -40, expires_after: 3d}
        - {id: demo, when: {event: Demo}, points: 85}
    lifecycle:
      mql_threshold: 45
      on_mql:
        - notify: {channel: sales, template: new-mql}
    """
    events = [
        track("u1", at(0), "Churn Risk"),
        track("u1", at(0), "Small"),
        track("u1", at(0), "Bounce"),
        track("u1", at(0, 1), "Demo"),  # 30; 35 after 1d, 45 after 2d
    ]
    records = run(tmp_path, rules, events, until=at(10))
    assert pick(records, "at", "action", "score") == [
        (at(2), "set_stage", 45),
        (at(2), "notify", 45),
    ]


def test_scoring_a_late_event_counts_against_the_limit_of_every_window_holding_it(
    tmp_path: Path,
) -> None:
    """The daemon's order (`replay --order received`): at most `times` awards in any window
    of `per`, also when an event arrives after later ones."""
    rules = (
        """
    scoring:
      rules:
        - {id: visit, when: {event: Visit}, points: 10, limit: {times: 1, per: 1d}}
    """
        + PING
    )
    base = [
        received(track("u1", at(hours=0), "Visit"), at(hours=0)),
        received(track("u1", at(hours=50), "Visit"), at(hours=50)),
    ]
    ping = received(track("u1", at(hours=70), "Ping"), at(hours=70))
    # less than a day late each (docs/rules.md, "Late events"): 25h lies in no window with
    # another award; 26h is exactly a day before 50h, so in its window; 30h as well
    cases = [(25, 30), (26, 20), (30, 20)]
    for late_hour, score in cases:
        late = received(track("u1", at(hours=late_hour), "Visit"), at(hours=51))
        replayed = Replayed(tmp_path / str(late_hour), rules, [*base, late, ping], order="received")
        assert pick(replayed.records, "score") == [(score,)], late_hour
    # twice a day: the late visit at 30h shares its window with 20h, and the one ending at
    # 50h with that award only
    twice = rules.replace("times: 1", "times: 2")
    late = received(track("u1", at(hours=30), "Visit"), at(hours=51))
    earlier = received(track("u1", at(hours=20), "Visit"), at(hours=20))
    events = [earlier, base[1], late, ping]
    replayed = Replayed(tmp_path / "twice", twice, events, order="received")
    assert pick(replayed.records, "score") == [(30,)]
    # once a day: 20h is kept (older than a day before 50h, not two), and blocks 30h
    replayed = Replayed(tmp_path / "once", rules, events, order="received")
    assert pick(replayed.records, "score") == [(20,)]


def test_scoring_a_reason_keeps_the_useful_properties_of_its_event_bounded(
    tmp_path: Path,
) -> None:
    rules = (
        """
    scoring:
      rules:
        - {id: video, when: {event: Video Watched}, points: 5}
    """
        + PING
    )
    long_title = "T" * 250
    events = [
        track(
            "u1",
            at(0),
            "Video Watched",
            title=long_title,
            category="case-study",
            seconds=42,
            extra={"nested": True},
            path=None,
        ),
        track("u1", at(0, 1), "Ping"),
    ]
    events.insert(1, track("u1", at(0, 0, 30), "Video Watched", title="E" * 200))
    report = Replayed(tmp_path, rules, events).explain("u1", at(1))
    reason, exact = (c["event"] for c in report["contributions"])
    assert exact["title"] == "E" * 200  # at the bound: kept whole
    assert reason["title"] == "T" * 199 + "…"
    assert reason["category"] == "case-study"
    assert "extra" not in reason and "seconds" not in reason and "path" not in reason
