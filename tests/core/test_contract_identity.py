"""Contract "Events (input)", identity: when an `identify` or `alias` links an anonymous id to
a known prospect, everything the anonymous id did counts for the known one — its points, its
counts in windows, its enrolments, its unsubscribe, its stage — and decisions name the known
id from then on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.core.contract_support import PING, STAGES, Replayed
from tests.scenario import at, identify, page, pick, run, track


def anon_identify(who: str, when: str, **traits: Any) -> dict[str, Any]:
    """An `identify` from an anonymous visitor: traits without a known id."""
    msg = identify(who, when, **traits)
    msg["anonymousId"] = msg.pop("userId")
    return msg


def alias(previous: str, user: str, when: str, message_id: str) -> dict[str, Any]:
    return {
        "type": "alias",
        "previousId": previous,
        "userId": user,
        "timestamp": when,
        "messageId": message_id,
    }


SENDS = """
    triggers:
      - id: nurture
        when: {event: Nurture}
        then:
          - send: {channel: email, template: hello}
          - notify: {channel: log, template: x}
    """


def test_identity_an_anonymous_unsubscribe_stays_after_the_merge(tmp_path: Path) -> None:
    events = [
        track("anon-1", at(0), "Unsubscribed", anonymous=True),
        track("u1", at(0, 1), "Nurture"),
        identify("u1", at(0, 2), "anon-1"),
        track("u1", at(0, 3), "Nurture"),
        track("anon-1", at(0, 4), "Nurture", anonymous=True),
    ]
    records = run(tmp_path, SENDS, events)
    assert pick(records, "at", "prospect", "action") == [
        (at(0, 1), "u1", "send"),
        (at(0, 1), "u1", "notify"),
        (at(0, 3), "u1", "notify"),  # no send: the merged prospect unsubscribed
        (at(0, 4), "u1", "notify"),
    ]


def test_identity_a_known_unsubscribe_stays_after_merging_a_subscribed_anonymous_id(
    tmp_path: Path,
) -> None:
    events = [
        track("u1", at(0), "Unsubscribed"),
        track("anon-1", at(0, 1), "Nurture", anonymous=True),
        identify("u1", at(0, 2), "anon-1"),
        track("u1", at(0, 3), "Nurture"),
    ]
    assert pick(run(tmp_path, SENDS, events), "prospect", "action") == [
        ("anon-1", "send"),
        ("anon-1", "notify"),
        ("u1", "notify"),
    ]


COOLING = """
    triggers:
      - id: demo
        when: {event: Demo}
        cooldown: 2d
        then:
          - notify: {channel: sales, template: x}
    """


def test_identity_a_cooldown_started_under_the_anonymous_id_holds_after_the_merge(
    tmp_path: Path,
) -> None:
    events = [
        track("u1", at(0), "Demo"),  # fires; cooling down until 2d
        track("anon-1", at(1), "Demo", anonymous=True),  # fires; cooling down until 3d
        identify("u1", at(1, 1), "anon-1"),
        track("u1", at(2, 12), "Demo"),  # u1's own cooldown is over, the anonymous one is not
        track("u1", at(3), "Demo"),
    ]
    assert pick(run(tmp_path, COOLING, events), "at", "prospect") == [
        (at(0), "u1"),
        (at(1), "anon-1"),
        (at(3), "u1"),
    ]


def test_identity_a_known_cooldown_holds_after_merging_an_older_anonymous_one(
    tmp_path: Path,
) -> None:
    events = [
        track("anon-1", at(0), "Demo", anonymous=True),  # cooling down until 2d
        track("u1", at(1), "Demo"),  # cooling down until 3d
        identify("u1", at(1, 1), "anon-1"),
        track("u1", at(2, 12), "Demo"),
        track("u1", at(3), "Demo"),
    ]
    assert pick(run(tmp_path, COOLING, events), "at", "prospect") == [
        (at(0), "anon-1"),
        (at(1), "u1"),
        (at(3), "u1"),
    ]


def test_identity_traits_merge_with_the_later_value_winning(tmp_path: Path) -> None:
    events = [
        identify("u1", at(0), title="Engineer", plan="free"),
        anon_identify("anon-1", at(1), title="VP", size=50),
        anon_identify("anon-2", at(0, -1), title="Intern", region="EU"),
        identify("u1", at(2), "anon-1"),
        identify("u1", at(3), "anon-2"),
    ]
    replayed = Replayed(tmp_path, PING, events)
    assert replayed.explain("u1", at(4))["traits"] == {
        "title": "VP",
        "plan": "free",
        "size": 50,
        "region": "EU",
    }


def test_identity_merged_traits_count_for_fit_rules(tmp_path: Path) -> None:
    rules = (
        """
    scoring:
      rules:
        - {id: senior, when: {trait: {title: VP}}, points: 20}
        - {id: visit, when: {page: {}}, points: 10}
    """
        + PING
    )
    events = [
        anon_identify("anon-1", at(0), title="VP"),
        page("anon-1", at(0, 1), anonymous=True),
        page("u1", at(0, 2)),
        identify("u1", at(1), "anon-1"),
        track("u1", at(1, 1), "Ping"),
    ]
    assert pick(run(tmp_path, rules, events), "prospect", "score") == [("u1", 40)]


def test_identity_an_anonymous_mql_merged_into_a_known_lead_never_becomes_mql_twice(
    tmp_path: Path,
) -> None:
    events = [
        page("anon-1", at(0), anonymous=True),
        page("anon-1", at(0, 1), anonymous=True),  # mql as anon-1, SLA until 1d1h
        identify("u1", at(0, 2), "anon-1"),
        page("u1", at(0, 3)),
        track("u1", at(0, 4), "Ping"),
    ]
    records = run(tmp_path, STAGES + PING, events, until=at(3))
    assert pick(records, "at", "prospect", "action", "rule", "stage") == [
        (at(0, 1), "anon-1", "set_stage", "lifecycle.mql", "mql"),
        (at(0, 1), "anon-1", "notify", "lifecycle.mql", "mql"),
        (at(0, 4), "u1", "notify", "ping", "mql"),
        (at(1, 1), "u1", "notify", "lifecycle.sla", "mql"),  # the SLA came along, once
    ]


def test_identity_the_further_along_stage_wins_either_way(tmp_path: Path) -> None:
    events = [
        track("u1", at(0), "Lead Qualified"),  # sql
        page("anon-1", at(0), anonymous=True),
        page("anon-1", at(0, 1), anonymous=True),  # mql
        identify("u1", at(0, 2), "anon-1"),
        track("u1", at(0, 3), "Ping"),
        track("u2", at(0), "Deal Won"),  # customer
        track("anon-2", at(0), "Lead Qualified", anonymous=True),  # sql
        identify("u2", at(0, 2), "anon-2"),
        track("u2", at(0, 3), "Ping"),
    ]
    records = run(tmp_path, STAGES + PING, events, until=at(3))
    assert pick([r for r in records if r["rule"] == "ping"], "prospect", "stage", "score") == [
        ("u1", "sql", 100),
        ("u2", "customer", 0),
    ]
    assert [r for r in records if r["rule"] == "lifecycle.sla"] == []


def test_identity_a_merge_that_lifts_the_score_to_the_threshold_makes_an_mql(
    tmp_path: Path,
) -> None:
    events = [
        page("anon-1", at(0), anonymous=True),
        page("u1", at(0, 1)),
        identify("u1", at(0, 2), "anon-1"),
    ]
    records = run(tmp_path, STAGES, events)
    assert pick(records, "at", "prospect", "action", "score") == [
        (at(0, 2), "u1", "set_stage", 100),
        (at(0, 2), "u1", "notify", 100),
    ]


def test_identity_the_first_link_wins(tmp_path: Path) -> None:
    rules = (
        """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 10}
    """
        + PING
    )
    events = [
        page("anon-1", at(0), anonymous=True),
        identify("u1", at(0, 1), "anon-1"),
        identify("u2", at(0, 2), "anon-1"),  # anon-1 already belongs to u1
        page("anon-1", at(0, 3), anonymous=True),
        alias("anon-1", "u2", at(0, 4), "al-1"),
        track("u1", at(0, 5), "Ping"),
        track("u2", at(0, 5), "Ping"),
        identify("u1", at(0, 6), "u1"),  # a link to itself changes nothing
        track("u1", at(0, 7), "Ping"),
    ]
    replayed = Replayed(tmp_path, rules, events)
    assert pick(replayed.records, "prospect", "score") == [("u1", 20), ("u2", 0), ("u1", 20)]
    assert replayed.explain("anon-1", at(1))["prospect"] == "u1"
    assert replayed.explain("u1", at(1))["aliases"] == ["anon-1"]


def test_identity_chains_of_links_reach_the_known_prospect(tmp_path: Path) -> None:
    rules = (
        """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 10}
    """
        + PING
    )
    events = [
        page("anon-1", at(0), anonymous=True),
        page("anon-2", at(0), anonymous=True),
        alias("anon-1", "anon-2", at(0, 1), "al-1"),
        page("anon-3", at(0, 1), anonymous=True),
        identify("u1", at(0, 2), "anon-3"),
        identify("u1", at(0, 3), "anon-2"),
        track("anon-1", at(0, 4), "Ping", anonymous=True),
    ]
    replayed = Replayed(tmp_path, rules, events)
    assert pick(replayed.records, "prospect", "score") == [("u1", 30)]
    assert sorted(replayed.explain("u1", at(1))["aliases"]) == ["anon-1", "anon-2", "anon-3"]


def test_identity_merged_points_keep_their_limits_and_expiry(tmp_path: Path) -> None:
    rules = (
        """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 10, limit: {times: 2, per: 7d},
           expires_after: 2d}
        - {id: bounce, when: {event: Bounce}, points: -5, expires_after: 1d}
        - {id: demo, when: {event: Demo}, points: 40}
    lifecycle:
      mql_threshold: 60
      on_mql:
        - notify: {channel: sales, template: new-mql}
    """
        + PING
    )
    events = [
        page("anon-1", at(0), anonymous=True),
        track("anon-1", at(0), "Bounce", anonymous=True),
        page("u1", at(0, 1)),
        identify("u1", at(0, 2), "anon-1"),
        page("u1", at(0, 3)),  # a third visit within 7d: the limit counts the anonymous one
        track("u1", at(0, 4), "Demo"),  # 55
        track("u1", at(1, 1), "Ping"),  # the bounce expired at 1d: 60 then, mql at 1d
        track("u1", at(2, 0, 30), "Ping"),  # the anonymous visit expired at 2d
    ]
    records = run(tmp_path, rules, events)
    assert pick(records, "at", "rule", "score") == [
        (at(1), "lifecycle.mql", 60),
        (at(1), "lifecycle.mql", 60),
        (at(1, 1), "ping", 60),
        (at(2, 0, 30), "ping", 50),
    ]


def test_identity_an_absence_window_opened_anonymously_is_kept_or_cancelled_after_merge(
    tmp_path: Path,
) -> None:
    rules = """
    triggers:
      - id: quiet
        when: {event: Guide}
        unless: {page: {}, within: 1d}
        then:
          - notify: {channel: sales, template: x}
    """
    events = [
        track("anon-1", at(0), "Guide", anonymous=True),
        identify("u1", at(0, 1), "anon-1"),
        track("anon-2", at(0), "Guide", anonymous=True),
        identify("u2", at(0, 1), "anon-2"),
        page("u2", at(0, 2)),  # cancels the window opened by anon-2
    ]
    assert pick(run(tmp_path, rules, events, until=at(3)), "at", "prospect") == [(at(1), "u1")]


def test_identity_enrolments_and_recent_activity_come_along(tmp_path: Path) -> None:
    rules = """
    triggers:
      - id: start
        when: {event: Guide}
        then:
          - start_sequence: nurture
      - id: ping
        when: {event: Ping}
        then:
          - notify: {channel: log, template: x}
    sequences:
      nurture:
        steps:
          - wait: 1d
          - send: {channel: email, template: a}
    """
    events = [
        track("u1", at(0), "Guide"),
        track("anon-1", at(0, 1), "Guide", anonymous=True),
        page("anon-1", at(0, 2), "/a", anonymous=True),
        page("u1", at(0, 3), "/b"),
        identify("u1", at(0, 4), "anon-1"),
        track("u1", at(0, 5), "Ping"),
    ]
    replayed = Replayed(tmp_path, rules, events, until=at(3))
    sends = [r for r in replayed.records if r["action"] == "send"]
    assert pick(sends, "at", "prospect") == [(at(1), "u1")]  # the known enrolment, once
    ping = next(c for c in replayed.contexts if c["rule"] == "ping")
    assert [(r["type"], r.get("path"), r.get("event")) for r in ping["recent"]] == [
        ("track", None, "Ping"),
        ("page", "/b", None),
        ("page", "/a", None),
        ("track", None, "Guide"),
        ("track", None, "Guide"),
    ]


def test_identity_a_rejection_reason_given_anonymously_is_kept(tmp_path: Path) -> None:
    events = [
        track("anon-1", at(0), "Lead Rejected", anonymous=True, reason="student"),
        identify("u1", at(0, 1), "anon-1"),
        track("u2", at(0), "Lead Rejected", reason="competitor"),
        track("anon-2", at(0), "Lead Rejected", anonymous=True, reason="spam"),
        identify("u2", at(0, 1), "anon-2"),
    ]
    replayed = Replayed(tmp_path, STAGES, events)
    assert replayed.explain("u1", at(1))["reject_reason"] == "student"
    assert replayed.explain("u2", at(1))["reject_reason"] == "competitor"
    history = replayed.explain("u2", at(1))["history"]
    assert [(h["stage"], h["reason"]) for h in history] == [
        ("recycled", "competitor"),
        ("recycled", "spam"),
    ]


def test_identity_merging_two_mqls_keeps_the_known_prospects_sla(tmp_path: Path) -> None:
    events = [
        page("u1", at(0)),
        page("u1", at(0, 1)),  # mql: SLA ends at 1d1h
        page("anon-1", at(0, 5), anonymous=True),
        page("anon-1", at(0, 6), anonymous=True),  # mql: SLA would end at 1d6h
        identify("u1", at(0, 7), "anon-1"),
    ]
    records = run(tmp_path, STAGES, events, until=at(3))
    breaches = [(r["at"], r["prospect"]) for r in records if r["rule"] == "lifecycle.sla"]
    assert breaches == [(at(1, 1), "u1")]


def test_identity_a_pending_expiry_check_of_the_anonymous_id_comes_along(tmp_path: Path) -> None:
    rules = """
    scoring:
      rules:
        - {id: bounce, when: {event: Bounce}, points: -30, expires_after: 1d}
        - {id: churn, when: {event: Churn Risk}, points: -10, expires_after: 5d}
        - {id: demo, when: {event: Demo}, points: 100}
    lifecycle:
      mql_threshold: 80
      on_mql:
        - notify: {channel: sales, template: new-mql}
    """
    events = [
        track("u1", at(0), "Churn Risk"),  # u1 checks at 5d
        track("anon-1", at(0), "Bounce", anonymous=True),  # anon-1 checks at 1d
        identify("u1", at(0, 1), "anon-1"),
        track("u1", at(0, 2), "Demo"),  # 60; 90 once the bounce expires at 1d
        track("u2", at(0), "Bounce"),  # u2 checks at 1d
        track("anon-2", at(0), "Churn Risk", anonymous=True),  # anon-2 checks at 5d
        identify("u2", at(0, 1), "anon-2"),
        track("u2", at(0, 2), "Demo"),  # 60; 90 at 1d
        track("anon-3", at(0), "Bounce", anonymous=True),  # only anon-3 has a check
        track("anon-3", at(0), "Demo", anonymous=True),
        identify("u3", at(0, 1), "anon-3"),  # u3 is new: 70; 100 at 1d
    ]
    records = run(tmp_path, rules, events, until=at(10))
    assert pick([r for r in records if r["action"] == "set_stage"], "at", "prospect") == [
        (at(1), "u1"),
        (at(1), "u2"),
        (at(1), "u3"),
    ]


# How an anonymous id reaches each stage on its own, in the order of the funnel.
_REACH = {
    "lead": [],
    "recycled": ["Lead Rejected"],
    "mql": ["visit", "visit"],
    "sal": ["visit", "visit", "Lead Accepted"],
    "sql": ["Lead Qualified"],
    "customer": ["Deal Won"],
}
_ORDER = list(_REACH)


@pytest.mark.parametrize("known_first", [True, False])
@pytest.mark.parametrize("lower", _ORDER[:-1])
def test_identity_the_further_along_stage_wins_for_every_pair_of_stages(
    tmp_path: Path, lower: str, known_first: bool
) -> None:
    higher = _ORDER[_ORDER.index(lower) + 1]
    known_stage, anon_stage = (lower, higher) if known_first else (higher, lower)
    events: list[dict[str, Any]] = [track("u1", at(0), "Hello")]
    for who, stage, anonymous in [("u1", known_stage, False), ("anon-1", anon_stage, True)]:
        for i, step in enumerate(_REACH[stage]):
            when = at(0, 1, minutes=i)
            if step == "visit":
                events.append(page(who, when, anonymous=anonymous))
            else:
                events.append(track(who, when, step, anonymous=anonymous))
    events += [identify("u1", at(0, 2), "anon-1"), track("u1", at(0, 3), "Ping")]
    records = run(tmp_path, STAGES + PING, events)
    assert records[-1]["rule"] == "ping"
    assert records[-1]["stage"] == higher


def test_identity_later_negative_expiries_of_the_anonymous_id_are_checked_too(
    tmp_path: Path,
) -> None:
    rules = """
    scoring:
      rules:
        - {id: small, when: {event: Small}, points: -10, expires_after: 1d}
        - {id: churn, when: {event: Churn Risk}, points: -40, expires_after: 3d}
        - {id: demo, when: {event: Demo}, points: 85}
    lifecycle:
      mql_threshold: 80
      on_mql:
        - notify: {channel: sales, template: new-mql}
    """
    events = [
        track("anon-1", at(0), "Small", anonymous=True),
        track("anon-1", at(0), "Churn Risk", anonymous=True),
        identify("u1", at(0, 1), "anon-1"),
        track("u1", at(0, 2), "Demo"),  # 35; 45 after 1d; 85 after 3d
    ]
    records = run(tmp_path, rules, events, until=at(10))
    assert pick(records, "at", "action", "score") == [
        (at(3), "set_stage", 85),
        (at(3), "notify", 85),
    ]
