"""Contract "Events (input)", identity: an `identify` or `alias` linking an anonymous id to a
known prospect makes everything the anonymous id did count for the known one. These tests pin
what a merge keeps when both ids hold the same kind of thing: traits set at the same instant,
accounts, expiring points numbered alike, and expiry checks due at the same instant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.core.contract_support import PING, STAGES, Replayed
from tests.scenario import at, identify, page, pick, run, track


def anon_identify(who: str, when: str, **traits: Any) -> dict[str, Any]:
    """An `identify` from an anonymous visitor: traits without a known id."""
    msg = identify(who, when, **traits)
    msg["anonymousId"] = msg.pop("userId")
    return msg


def group(who: str, when: str, group_id: str, *, anonymous: bool = False, **traits: Any) -> dict:
    return {
        "type": "group",
        "anonymousId" if anonymous else "userId": who,
        "groupId": group_id,
        "timestamp": when,
        "traits": traits,
    }


def test_identity_traits_set_at_the_same_instant_keep_the_known_prospects_value(
    tmp_path: Path,
) -> None:
    # "Later values win"; neither is later here, and the known prospect's value stays.
    events = [
        identify("u1", at(0), title="Engineer"),
        anon_identify("anon-1", at(0), title="VP", size=50),
        identify("u1", at(1), "anon-1"),
    ]
    replayed = Replayed(tmp_path, PING, events)
    assert replayed.explain("u1", at(2))["traits"] == {"title": "Engineer", "size": 50}


def test_identity_the_anonymous_ids_account_comes_along_unless_the_known_one_has_its_own(
    tmp_path: Path,
) -> None:
    events = [
        group("anon-1", at(0), "acme", anonymous=True, name="Acme"),
        identify("u1", at(0, 1), "anon-1"),  # u1 has no account: anon-1's comes along
        group("u2", at(0), "globex", name="Globex"),
        group("anon-2", at(0, 1), "acme", anonymous=True, name="Acme"),
        identify("u2", at(0, 2), "anon-2"),  # u2 keeps its own account
    ]
    replayed = Replayed(tmp_path, PING, events)
    u1, u2 = replayed.explain("u1", at(1)), replayed.explain("u2", at(1))
    assert (u1["account"], u1["account_traits"]) == ("acme", {"name": "Acme"})
    assert (u2["account"], u2["account_traits"]) == ("globex", {"name": "Globex"})


def test_identity_points_of_both_ids_earned_at_the_same_instant_all_count_and_expire(
    tmp_path: Path,
) -> None:
    # Both ids' first entries carry the same number and expire at the same instant: the
    # merged prospect holds both, and both expire on time.
    rules = (
        """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 10, expires_after: 2d}
    """
        + PING
    )
    events = [
        page("u1", at(0)),
        page("anon-1", at(0), anonymous=True),
        page("anon-1", at(0, 1), anonymous=True),
        identify("u1", at(0, 2), "anon-1"),
        track("u1", at(1), "Ping"),
        track("u1", at(2), "Ping"),  # the two visits at 0 expired at 2d
        track("u1", at(2, 1), "Ping"),
    ]
    replayed = Replayed(tmp_path, rules, events)
    assert pick(replayed.records, "at", "score") == [(at(1), 30), (at(2), 10), (at(2, 1), 0)]
    contributions = replayed.explain("u1", at(3))["contributions"]
    assert [(c["at"], c["points"], c["status"]) for c in contributions] == [
        (at(0), 10, "expired"),
        (at(0), 10, "expired"),
        (at(0, 1), 10, "expired"),
    ]


# Negative points expiring at 1d, and a sequence step due at the same instant. Timers due at
# one instant fire in the order they were scheduled (docs/rules.md): the first expiry check
# scheduled for 1d runs before the step, so the step's send already sees the new mql.
EXPIRY_AND_STEP = """
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


def test_identity_a_merged_expiry_check_due_with_the_known_ones_keeps_the_known_ones_place(
    tmp_path: Path,
) -> None:
    events = [
        track("u1", at(0), "Churn Risk"),  # u1's expiry check: due at 1d
        track("u1", at(0, 1), "Guide"),  # its step: due at 1d, scheduled after the check
        track("anon-1", at(0, 2), "Bounce", anonymous=True),  # anon-1's check: due at 1d
        identify("u1", at(0, 3), "anon-1"),
        track("u1", at(0, 4), "Demo"),  # 80; 100 at 1d
    ]
    records = run(tmp_path, EXPIRY_AND_STEP, events, until=at(2))
    assert pick([r for r in records if r["at"] == at(1)], "action", "rule", "stage", "score") == [
        ("set_stage", "lifecycle.mql", "mql", 100),
        ("notify", "lifecycle.mql", "mql", 100),
        ("send", "sequence:drip", "mql", 100),
    ]


def test_identity_an_enrolment_of_the_anonymous_id_alone_goes_on_under_the_known_id(
    tmp_path: Path,
) -> None:
    rules = """
    triggers:
      - id: start
        when: {event: Guide}
        then:
          - start_sequence: nurture
    sequences:
      nurture:
        steps:
          - wait: 1d
          - send: {channel: email, template: a}
    """
    events = [
        track("anon-1", at(0), "Guide", anonymous=True),
        identify("u1", at(0, 1), "anon-1"),  # u1 is not enrolled: anon-1's enrolment comes
    ]
    records = run(tmp_path, rules, events, until=at(3))
    assert pick(records, "at", "prospect", "action", "rule") == [
        (at(0), "anon-1", "start_sequence", "start"),
        (at(1), "u1", "send", "sequence:nurture"),
    ]


def test_identity_an_anonymous_mql_outranks_a_recycled_prospect_already_over_the_threshold(
    tmp_path: Path,
) -> None:
    # Rejected without a reset, u1 keeps its 100 points: being over the threshold already,
    # it cannot become an mql by score. The merge brings anon-1's mql stage, and its SLA.
    rules = STAGES + PING
    events = [
        page("u1", at(0)),
        page("u1", at(0, 1)),  # mql
        track("u1", at(0, 2), "Lead Rejected", reason="timing"),  # recycled, still 100
        page("anon-1", at(0, 3), anonymous=True),
        page("anon-1", at(0, 4), anonymous=True),  # mql: its SLA ends at 1d4h
        identify("u1", at(0, 5), "anon-1"),
        track("u1", at(0, 6), "Ping"),
    ]
    records = run(tmp_path, rules, events, until=at(2))
    later = [r for r in records if r["at"] > at(0, 4)]
    assert pick(later, "at", "prospect", "rule", "stage", "score") == [
        (at(0, 6), "u1", "ping", "mql", 200),
        (at(1, 4), "u1", "lifecycle.sla", "mql", 200),
    ]
