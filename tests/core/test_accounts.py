"""Accounts (ABM): `group` calls attach prospects to an account with traits; the account
score is the sum of its prospects' top three scores; explain shows the account."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leadrules.engine.core.accounts import account_scores
from leadrules.engine.timefmt import parse_timestamp
from tests.core.contract_support import Replayed
from tests.scenario import at, identify, page

RULES = """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 10}
    """


def group(who: str, when: str, group_id: str, **traits: Any) -> dict[str, Any]:
    return {
        "type": "group",
        "userId": who,
        "groupId": group_id,
        "timestamp": when,
        "traits": traits,
    }


def test_group_calls_attach_prospects_to_an_account_with_traits(tmp_path: Path) -> None:
    events = [
        group("u1", at(0), "acme", name="Acme", employees=450),
        group("u2", at(0, 1), "acme", plan="enterprise"),
        group("u3", at(0, 1), "globex", name="Globex"),
    ]
    replayed = Replayed(tmp_path, RULES, events)
    report = replayed.explain("u1", at(1))
    assert (report["account"], report["account_traits"]) == (
        "acme",
        {"name": "Acme", "employees": 450},
    )
    assert replayed.explain("u3", at(1))["account"] == "globex"


def test_the_account_score_is_the_sum_of_its_top_three_prospect_scores(tmp_path: Path) -> None:
    visits = {"u1": 4, "u2": 3, "u3": 2, "u4": 1, "solo": 5}
    events = [group(who, at(0), "acme") for who in ("u1", "u2", "u3", "u4")]
    events += [page(who, at(0, n + 1)) for who, count in visits.items() for n in range(count)]
    events.append(identify("solo", at(0), title="x"))
    replayed = Replayed(tmp_path, RULES, events)
    states = replayed.result.world.states.values()
    scores = account_scores(states, parse_timestamp(at(1)))
    assert list(scores) == ["acme"]
    acme = scores["acme"]
    assert acme["score"] == 40 + 30 + 20  # u4's 10 is not among the top three
    assert [p["prospect"] for p in acme["prospects"]] == ["u1", "u2", "u3", "u4"]


def test_a_later_group_call_moves_the_prospect_to_the_new_account(tmp_path: Path) -> None:
    events = [group("u1", at(0), "acme", name="Acme"), group("u1", at(1), "globex")]
    report = Replayed(tmp_path, RULES, events).explain("u1", at(2))
    assert (report["account"], report["account_traits"]) == ("globex", {})
