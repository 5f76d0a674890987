"""Contract "Actions" (`send`: a suppressed send is not a decision) with the channel's
`send_cap` (docs/operations.md, "Send caps"): at most N `send`s through a channel to one
prospect within any D, across sequences and triggers; a send over the cap writes no record,
and the counts follow identity merges."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from leadrules.engine.core.turn import Options
from leadrules.engine.language.loader import load_rules
from leadrules.engine.replay.dry_run import replay
from leadrules.engine.replay.sources import EventFile
from leadrules.engine.timefmt import parse_timestamp
from tests.scenario import CHANNELS, at, identify, pick, track, write_events, write_rules

CAPPED_CHANNELS = CHANNELS.replace(
    "  email: {adapter: console}",
    "  email: {adapter: console, send_cap: {times: 2, per: 7d}}\n  sms: {adapter: console}",
)

RULES = """
    triggers:
      - id: nurture
        when: {event: Nurture}
        then:
          - send: {channel: email, template: hello}
          - send: {channel: sms, template: hello}
          - notify: {channel: email, template: heads-up}
      - id: drip
        when: {event: Guide}
        then:
          - start_sequence: drip
    sequences:
      drip:
        steps:
          - send: {channel: email, template: one}
          - wait: 1d
          - send: {channel: email, template: two}
    """


def replayed(
    tmp_path: Path, rules: str, events: list[dict[str, Any]], until: str | None = None
) -> list[dict[str, Any]]:
    """The decision records of a replay with `CAPPED_CHANNELS` as config/channels.yaml."""
    rules_dir, config_dir = write_rules(tmp_path, rules)
    (config_dir / "channels.yaml").write_text(CAPPED_CHANNELS)
    ruleset, _ = load_rules(rules_dir, config_dir, references="warn")
    out = io.BytesIO()
    replay(
        [EventFile(str(write_events(tmp_path / "events.jsonl", events)))],
        ruleset,
        out,
        until=None if until is None else parse_timestamp(until),
        options=Options(),
    )
    return [json.loads(line) for line in out.getvalue().splitlines()]


def sends(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return pick([r for r in records if r["action"] == "send"], "at", "channel", "template")


def test_send_cap_a_trigger_send_over_the_cap_writes_no_record(tmp_path: Path) -> None:
    events = [track("u1", at(d), "Nurture") for d in (0, 1, 2, 7)]
    records = replayed(tmp_path, RULES, events)
    assert sends(records) == [
        (at(0), "email", "hello"),
        (at(0), "sms", "hello"),  # a channel without a cap is never held back
        (at(1), "email", "hello"),
        (at(1), "sms", "hello"),
        (at(2), "sms", "hello"),  # the third e-mail within 7d: no record
        (at(7), "email", "hello"),  # the send at 0 is 7d old: out of the window
        (at(7), "sms", "hello"),
    ]
    # A notify goes to sales, not to the prospect: the cap does not count or hold it.
    notifies = [r["at"] for r in records if r["action"] == "notify"]
    assert notifies == [at(0), at(1), at(2), at(7)]


def test_send_cap_counts_sends_across_sequences_and_triggers(tmp_path: Path) -> None:
    events = [
        track("u1", at(0), "Guide"),  # the sequence's first send; its second waits 1d
        track("u1", at(0, 1), "Nurture"),  # the second e-mail within 7d
        track("u2", at(0), "Guide"),  # another prospect has its own count
    ]
    records = replayed(tmp_path, RULES, events, until=at(3))
    assert pick(
        [r for r in records if r.get("channel") == "email"], "at", "prospect", "action"
    ) == [
        (at(0), "u1", "send"),
        (at(0), "u2", "send"),
        (at(0, 1), "u1", "send"),
        (at(0, 1), "u1", "notify"),
        (at(1), "u2", "send"),  # the step of u2's drip: its second e-mail
    ]
    # u1's drip went on without the capped step, and ended: no stop record.
    assert [r["action"] for r in records if r["prospect"] == "u1"] == [
        "start_sequence",
        "send",
        "send",
        "send",
        "notify",
    ]


def test_send_cap_counts_follow_an_identity_merge(tmp_path: Path) -> None:
    events = [
        track("anon-1", at(0), "Nurture", anonymous=True),
        track("u1", at(0, 1), "Nurture"),
        identify("u1", at(0, 2), "anon-1"),
        track("u1", at(1), "Nurture"),  # the third e-mail to the merged prospect within 7d
        track("u2", at(0), "Nurture"),
        identify("u2", at(0, 2), "anon-2"),  # nothing to merge: u2 keeps its count
        track("u2", at(1), "Nurture"),
    ]
    records = replayed(tmp_path, RULES, events)
    email = [r for r in records if r["action"] == "send" and r["channel"] == "email"]
    assert pick(email, "at", "prospect") == [
        (at(0), "anon-1"),
        (at(0), "u2"),
        (at(0, 1), "u1"),
        (at(1), "u2"),
    ]


def test_send_cap_a_send_to_a_channel_missing_from_the_config_is_still_decided(
    tmp_path: Path,
) -> None:
    # `check` reports the unknown channel; a replay warns and records the decision (the
    # dispatcher is the one that cannot deliver it).
    rules = """
    triggers:
      - id: nurture
        when: {event: Nurture}
        then:
          - send: {channel: pigeon, template: hello}
    """
    events = [track("u1", at(d), "Nurture") for d in (0, 1, 2)]
    assert sends(replayed(tmp_path, rules, events)) == [
        (at(0), "pigeon", "hello"),
        (at(1), "pigeon", "hello"),
        (at(2), "pigeon", "hello"),
    ]
