"""Account rules (ABM): account fit, the account score (top N prospect scores plus account
fit), account triggers (`scope: account`, `distinct: prospects`), the account MQL threshold
and its notification, and accounts across identity merges. Rules and events go through the
real loader and replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leadrules.engine.core.accounts import account_score
from leadrules.engine.timefmt import parse_timestamp
from tests.core.contract_support import Replayed, received
from tests.scenario import at, identify, page, pick, run, run_full, track

SCORING = """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 10}
        - {id: pricing, when: {page: {path: /pricing}}, points: 20, expires_after: 10d}
    """

ACCOUNTS = """
    accounts:
      top: 2
      fit:
        - id: enterprise
          when: {trait: {employees: {at_least: 1000}}}
          points: 50
      mql_threshold: 100
      on_mql:
        - notify: {channel: sales, template: account-mql}
    """

SURGE = """
    triggers:
      - id: account-pricing-surge
        scope: account
        when: {page: {path: /pricing}, times: 3, within: 7d, distinct: prospects}
        cooldown: 30d
        then:
          - notify: {channel: sales, template: account-surge}
    """


def group(who: str, when: str, group_id: str, **traits: Any) -> dict[str, Any]:
    return {
        "type": "group",
        "userId": who,
        "groupId": group_id,
        "timestamp": when,
        "traits": traits,
    }


def _score(replayed: Replayed, account: str, when: str) -> int:
    world = replayed.result.world
    state = world.accounts[account]
    rules = replayed.ruleset.accounts
    assert rules is not None
    return account_score(world, state, parse_timestamp(when), rules.top)


def test_account_fit_rules_count_while_the_account_traits_satisfy_them(tmp_path: Path) -> None:
    events = [
        group("u1", at(0), "acme", employees=5000),
        page("u1", at(0, 1)),
        group("u2", at(2), "acme", employees=800),  # the account's traits: later values win
    ]
    replayed = Replayed(tmp_path / "before", SCORING + ACCOUNTS, events[:2])
    assert _score(replayed, "acme", at(1)) == 50 + 10
    assert replayed.result.world.accounts["acme"].fit["enterprise"].points == 50
    replayed = Replayed(tmp_path, SCORING + ACCOUNTS, events)
    state = replayed.result.world.accounts["acme"]
    assert (state.fit_points, list(state.fit)) == (0, [])
    assert _score(replayed, "acme", at(3)) == 10


def test_the_account_score_is_its_fit_plus_its_top_n_prospect_scores(tmp_path: Path) -> None:
    visits = {"u1": 3, "u2": 2, "u3": 1}
    events = [group(who, at(0), "acme", employees=2000) for who in visits]
    events += [page(who, at(0, n + 1)) for who, count in visits.items() for n in range(count)]
    replayed = Replayed(tmp_path, SCORING + ACCOUNTS.replace("mql_threshold: 100", ""), events)
    # top: 2 -> u1 (30) and u2 (20) count, u3 (10) does not; plus 50 of fit.
    assert _score(replayed, "acme", at(1)) == 50 + 30 + 20
    assert replayed.result.world.accounts["acme"].members == ["u1", "u2", "u3"]


def test_the_account_score_follows_expiring_prospect_points(tmp_path: Path) -> None:
    events = [group("u1", at(0), "acme"), page("u1", at(0, 1), "/pricing")]
    replayed = Replayed(tmp_path, SCORING + ACCOUNTS, events)
    assert _score(replayed, "acme", at(5)) == 30
    assert _score(replayed, "acme", at(11)) == 10  # the pricing points expired after 10d


def test_account_trigger_fires_when_three_people_of_one_account_visit_pricing(
    tmp_path: Path,
) -> None:
    events = [group(who, at(0), "acme") for who in ("u1", "u2", "u3")]
    events += [group("x1", at(0), "globex")]
    events += [
        page("u1", at(1), "/pricing"),
        page("u1", at(2), "/pricing"),  # the same person again: not a new prospect
        page("x1", at(2), "/pricing"),  # another account
        page("u2", at(3), "/pricing"),
        page("u3", at(4), "/pricing"),
        page("u1", at(5), "/pricing"),  # cooling down
    ]
    records = run(tmp_path, SCORING + SURGE, events)
    fired = [r for r in records if r["rule"] == "account-pricing-surge"]
    assert fired == [
        {
            "at": at(4),
            "prospect": "u3",
            "account": "acme",
            "action": "notify",
            "rule": "account-pricing-surge",
            "channel": "sales",
            "template": "account-surge",
            "score": 60 + 30 + 30,  # account triggers alone: the default top 3, no fit
            "stage": "lead",
        }
    ]


def test_account_trigger_without_distinct_counts_events_of_every_member(tmp_path: Path) -> None:
    rules = SCORING + SURGE.replace(", distinct: prospects", "").replace("cooldown: 30d", "")
    events = [group("u1", at(0), "acme"), group("u2", at(0), "acme")]
    events += [page("u1", at(1), "/pricing"), page("u1", at(2), "/pricing")]
    events += [page("u2", at(3), "/pricing"), page("u2", at(9), "/pricing")]
    records = run(tmp_path, rules, events)
    assert pick([r for r in records if "account" in r], "at", "prospect") == [(at(3), "u2")]


def test_account_trigger_uses_up_its_events_and_forgets_those_out_of_the_window(
    tmp_path: Path,
) -> None:
    rules = SCORING + SURGE.replace("cooldown: 30d", "")
    people = ["u1", "u2", "u3", "u4", "u5", "u6"]
    events = [group(who, at(0), "acme") for who in people]
    events += [page("u1", at(1), "/pricing"), page("u2", at(3), "/pricing")]
    events += [page("u3", at(9), "/pricing")]  # u1 is 8 days earlier: out of the window
    events += [page("u4", at(10), "/pricing")]  # u2 exactly 7d earlier is within: fires
    events += [page("u5", at(11), "/pricing")]  # only u5 is unused now
    records = run(tmp_path, rules, events)
    assert pick([r for r in records if "account" in r], "at", "prospect") == [(at(10), "u4")]


def test_a_prospect_without_an_account_counts_for_no_account_trigger(tmp_path: Path) -> None:
    events = [page(who, at(1), "/pricing") for who in ("a", "b", "c")]
    assert [r for r in run(tmp_path, SCORING + SURGE, events) if "account" in r] == []


def test_account_mql_notifies_sales_once_with_the_account_score(tmp_path: Path) -> None:
    events = [group("u1", at(0), "acme", employees=2000), group("u2", at(0), "acme")]
    events += [page("u1", at(1), "/pricing")]  # 50 + 30 = 80
    events += [page("u2", at(2))]  # 50 + 30 + 10 = 90
    events += [page("u2", at(3))]  # 100: the account becomes an MQL
    events += [page("u2", at(4))]  # still an MQL: no second notification
    replayed = Replayed(tmp_path, SCORING + ACCOUNTS, events)
    assert [r for r in replayed.records if "account" in r] == [
        {
            "at": at(3),
            "prospect": "u2",
            "account": "acme",
            "action": "notify",
            "rule": "accounts.mql",
            "channel": "sales",
            "template": "account-mql",
            "score": 100,
            "stage": "mql",
        }
    ]
    account = replayed.contexts[0]["account"]
    assert (account["id"], account["score"], account["stage"]) == ("acme", 100, "mql")
    assert [(m["prospect"], m["score"], m["counts"]) for m in account["members"]] == [
        ("u1", 30, True),
        ("u2", 20, True),
    ]
    assert account["members"][0]["reasons"] == [
        {"rule": "pricing", "points": 20},
        {"rule": "visit", "points": 10},
    ]
    assert account["fit"][0]["rule"] == "enterprise"
    assert replayed.contexts[0]["prospect"] == "u2"
    assert replayed.contexts[0]["score"] == 20  # the prospect's own score


def test_account_mql_happens_again_after_the_score_dropped_below(tmp_path: Path) -> None:
    rules = SCORING + ACCOUNTS.replace("mql_threshold: 100", "mql_threshold: 30")
    events = [group("u1", at(0), "acme"), page("u1", at(1), "/pricing")]  # 30: MQL
    events += [track("u1", at(12), "Webinar Joined")]  # evaluated at 10: below, armed again
    events += [page("u1", at(13), "/pricing")]  # 10 + 10 + 20 = 40: a second MQL
    records, result = run_full(tmp_path, rules, events)
    assert pick([r for r in records if "account" in r], "at", "score") == [
        (at(1), 30),
        (at(13), 40),
    ]
    assert result.world.accounts["acme"].mqls == [parse_timestamp(at(1)), parse_timestamp(at(13))]


def test_accounts_survive_identity_merges(tmp_path: Path) -> None:
    anonymous = {**group("anon-1", at(0), "acme"), "anonymousId": "anon-1"}
    del anonymous["userId"]
    events = [
        anonymous,
        page("anon-1", at(1), "/pricing", anonymous=True),
        group("u2", at(1), "acme"),
        page("u2", at(2), "/pricing"),
        identify("ann", at(3), anonymous_id="anon-1", title="VP"),  # anon-1 is Ann now
        page("ann", at(4), "/pricing"),  # Ann again: not a third prospect
        group("u3", at(4), "acme"),
        page("u3", at(5), "/pricing"),
    ]
    replayed = Replayed(tmp_path, SCORING + ACCOUNTS + SURGE, events)
    world = replayed.result.world
    assert world.accounts["acme"].members == ["ann", "u2", "u3"]
    surge = [r for r in replayed.records if r["rule"] == "account-pricing-surge"]
    assert pick(surge, "at", "prospect") == [(at(5), "u3")]
    # ann: 2 pricing visits (60), u2 30: the top two; u3's 30 ties u2, and u2 sorts first.
    assert _score(replayed, "acme", at(5)) == 60 + 30
    assert replayed.explain("anon-1", at(5))["account"] == "acme"


def test_a_merge_into_a_prospect_of_another_account_leaves_the_first(tmp_path: Path) -> None:
    anonymous = {**group("anon-1", at(0), "acme"), "anonymousId": "anon-1"}
    del anonymous["userId"]
    events = [anonymous, group("ann", at(0), "globex"), identify("ann", at(1), "anon-1")]
    replayed = Replayed(tmp_path, SCORING + ACCOUNTS, events)
    accounts = replayed.result.world.accounts
    assert (accounts["acme"].members, accounts["globex"].members) == ([], ["ann"])


def test_rules_without_accounts_write_no_account_record_and_keep_no_account_book(
    tmp_path: Path,
) -> None:
    events = [group(who, at(0), "acme") for who in ("u1", "u2", "u3")]
    events += [page(who, at(1), "/pricing") for who in ("u1", "u2", "u3")]
    records, result = run_full(tmp_path, SCORING, events)
    assert records == []
    assert dict(result.world.accounts) == {}


def test_a_late_event_completes_an_account_window_and_decides_at_the_accounts_latest_time(
    tmp_path: Path,
) -> None:
    """Live (received order): u2's pricing visit of day 2 arrives on day 4, after u3's of
    day 3. Its timestamp places it in the window (three people within 7d); the account
    record is decided at the account's latest time, day 3, never earlier."""
    events = [received(group(who, at(0), "acme"), at(0)) for who in ("u1", "u2", "u3")]
    events += [
        received(page("u1", at(1), "/pricing"), at(1)),
        received(page("u3", at(3), "/pricing"), at(3)),
        received(page("u2", at(2), "/pricing"), at(4)),
    ]
    replayed = Replayed(tmp_path, SCORING + SURGE, events, order="received", until=at(4))
    fired = [r for r in replayed.records if r["rule"] == "account-pricing-surge"]
    assert pick(fired, "at", "prospect") == [(at(3), "u2")]
    timestamp_order = run(tmp_path / "ts", SCORING + SURGE, events)
    fired = [r for r in timestamp_order if r["rule"] == "account-pricing-surge"]
    assert pick(fired, "at", "prospect") == [(at(3), "u3")]


def test_negative_points_expiring_can_make_an_account_mql_at_the_expiry(tmp_path: Path) -> None:
    rules = """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 30}
        - {id: complaint, when: {event: Complained}, points: -20, expires_after: 5d}
    accounts:
      mql_threshold: 50
      on_mql:
        - notify: {channel: sales, template: account-mql}
    """
    events = [group("u1", at(0), "acme"), group("u2", at(0), "acme")]
    events += [track("u1", at(1), "Complained"), page("u1", at(1, 1)), page("u2", at(2))]
    # 10 + 30 = 40 until the -20 expires at day 6: then 60, an account MQL at that instant.
    records = run(tmp_path, rules, events, until=at(10))
    assert pick([r for r in records if "account" in r], "at", "prospect", "score") == [
        (at(6), "u1", 60)
    ]
