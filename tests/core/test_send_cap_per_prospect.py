"""Send caps per prospect (`lifecycle.send_cap: {times: N, per: D}`, docs/rules.md,
"Lifecycle"): at most N sends to one prospect within any D, across sequences, triggers and
channels. A send over the cap is suppressed like one to an unsubscribed prospect (contract
"Actions": no record); notifications to sales are never capped; a send one cap refuses
counts towards no cap; the counts follow identity merges."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from leadrules.engine.errors import RuleError
from leadrules.engine.language.loader import load_rules
from leadrules.engine.language.schema import json_schema
from leadrules.engine.replay.dry_run import replay
from leadrules.engine.replay.sources import EventFile
from tests.scenario import at, identify, pick, run, track, write_events, write_rules

RULES = """
    lifecycle:
      send_cap: {times: 2, per: 7d}
    triggers:
      - id: nurture
        when: {event: Nurture}
        then:
          - send: {channel: email, template: hello}
          - send: {channel: crm, template: hello}
          - notify: {channel: sales, template: heads-up}
      - id: drip
        when: {event: Guide}
        then:
          - start_sequence: drip
    sequences:
      drip:
        steps:
          - send: {channel: email, template: one}
          - wait: 1d
          - send: {channel: log, template: two}
    """


def sends(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return pick(
        [r for r in records if r["action"] in ("send", "notify")], "at", "action", "channel"
    )


def test_per_prospect_at_most_n_sends_within_d_across_sequences_triggers_and_channels(
    tmp_path: Path,
) -> None:
    events = [
        track("u1", at(0), "Nurture"),  # two sends: the cap is reached
        track("u1", at(1), "Guide"),  # the sequence's first send (email) is suppressed
        track("u1", at(7, minutes=1), "Nurture"),  # a week after the first two: both again
    ]
    records = run(tmp_path, RULES, events, until=at(10))
    assert sends(records) == [
        (at(0), "send", "email"),
        (at(0), "send", "crm"),
        (at(0), "notify", "sales"),  # notifications to sales are never capped
        # day 2: the sequence's second send (log) is over the cap too
        (at(7, minutes=1), "send", "email"),
        (at(7, minutes=1), "send", "crm"),
        (at(7, minutes=1), "notify", "sales"),
    ]
    # The sequence ran on: a suppressed send is not a record and does not stop it.
    assert [r["action"] for r in records if r["rule"] == "drip"] == ["start_sequence"]


def test_the_cap_is_per_prospect(tmp_path: Path) -> None:
    events = [track("u1", at(0), "Nurture"), track("u2", at(0, hours=1), "Nurture")]
    records = run(tmp_path, RULES, events)
    assert pick([r for r in records if r["action"] == "send"], "prospect") == [
        ("u1",),
        ("u1",),
        ("u2",),
        ("u2",),
    ]


def test_a_send_one_cap_refuses_counts_towards_no_cap(tmp_path: Path) -> None:
    """Prospect cap 1 a day, email cap 2 a month: the email refused by the prospect cap on
    day 0 leaves room for the email on day 2 under the channel's cap."""
    rules = RULES.replace("{times: 2, per: 7d}", "{times: 1, per: 1d}")
    rules_dir, config_dir = write_rules(tmp_path, rules)
    channels = config_dir / "channels.yaml"
    channels.write_text(
        channels.read_text().replace(
            "email: {adapter: console}",
            "email: {adapter: console, send_cap: {times: 2, per: 30d}}",
        )
    )
    events = [
        track("u1", at(0), "Nurture"),  # email allowed; crm over the prospect cap
        track("u1", at(0, hours=12), "Nurture"),  # both over the prospect cap
        track("u1", at(2), "Nurture"),  # email: 1 of 2 this month; crm then over 1 a day
    ]
    ruleset, _ = load_rules(rules_dir, config_dir, references="warn")
    out = io.BytesIO()
    replay([EventFile(str(write_events(tmp_path / "e.jsonl", events)))], ruleset, out)
    records = [json.loads(x) for x in out.getvalue().splitlines()]
    assert pick([r for r in records if r["action"] == "send"], "at", "channel") == [
        (at(0), "email"),
        (at(2), "email"),
    ]


def test_the_prospect_cap_follows_identity_merges(tmp_path: Path) -> None:
    events = [
        track("anon-1", at(0), "Nurture", anonymous=True),  # the anonymous visitor: 2 sends
        identify("u1", at(0, hours=1), anonymous_id="anon-1", email="a@example.com"),
        track("u1", at(1), "Nurture"),  # merged: the cap is already reached
    ]
    records = run(tmp_path, RULES, events)
    assert pick([r for r in records if r["action"] == "send"], "at") == [(at(0),), (at(0),)]


@pytest.mark.parametrize(
    ("cap", "message"),
    [
        ("{times: 0, per: 7d}", "greater than or equal to 1"),
        ("{times: 2}", "per"),
        ("{times: 2, per: soon}", "got 'soon'"),
        ("{times: 2, per: 7d, every: 1d}", "every"),
    ],
)
def test_check_refuses_a_bad_prospect_send_cap_at_its_position(
    tmp_path: Path, cap: str, message: str
) -> None:
    rules_dir, config_dir = write_rules(tmp_path, RULES.replace("{times: 2, per: 7d}", cap))
    with pytest.raises(RuleError) as caught:
        load_rules(rules_dir, config_dir, references="warn")
    [problem] = caught.value.problems
    assert problem.path.endswith("rules.yaml") and problem.line == 3, problem
    assert message in str(problem)


def test_the_schema_has_the_prospect_send_cap() -> None:
    defs = json_schema()["$defs"]
    cap = defs["LifecycleModel"]["properties"]["send_cap"]
    assert "across every sequence, trigger and channel" in str(cap)
    assert set(defs["SendCap"]["required"]) == {"times", "per"}
