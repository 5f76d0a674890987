"""Send windows: per channel, quiet hours and working days in the prospect's time zone (the
`timezone` trait, else the window's); a `send` due in quiet hours waits for the window —
a replay shows the shifted time (`deliver_at`), the daemon's dispatcher holds it until then."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from leadrules.adapters.memory import MemoryAdapter
from leadrules.engine.clock import SimulatedClock
from leadrules.engine.core.send_windows import SendWindow, next_open
from leadrules.engine.daemon.dispatch import Dispatcher, outbox
from leadrules.engine.daemon.service import Service
from leadrules.engine.daemon.store import Store
from leadrules.engine.errors import RuleError
from leadrules.engine.language.loader import load_rules
from leadrules.engine.language.templates import TemplateSet
from leadrules.engine.replay.dry_run import replay
from leadrules.engine.replay.sources import EventFile
from leadrules.engine.timefmt import format_at, parse_timestamp
from tests.scenario import CHANNELS, write_events, write_rules

WEEKDAYS = SendWindow(9 * 60, 17 * 60, frozenset(range(5)), "Europe/Berlin")


def _t(text: str) -> int:
    return parse_timestamp(text)


@pytest.mark.parametrize(
    ("at", "traits", "due"),
    [
        ("2026-03-04T10:00:00Z", {}, "2026-03-04T10:00:00Z"),  # Wed 11:00 Berlin: open
        ("2026-03-04T17:30:00Z", {}, "2026-03-05T08:00:00Z"),  # Wed 18:30: Thu 09:00 Berlin
        ("2026-03-06T16:00:00Z", {}, "2026-03-09T08:00:00Z"),  # Fri 17:00: Monday
        ("2026-03-07T12:00:00Z", {}, "2026-03-09T08:00:00Z"),  # Saturday: Monday
        ("2026-03-04T05:00:00Z", {"timezone": "America/New_York"}, "2026-03-04T14:00:00Z"),
        ("2026-03-04T05:00:00Z", {"timezone": "Not/AZone"}, "2026-03-04T08:00:00Z"),
        ("2026-03-28T12:00:00Z", {}, "2026-03-30T07:00:00Z"),  # Monday after DST: 09:00 CEST
    ],
)
def test_quiet_hours_and_working_days_in_the_prospects_time_zone(
    at: str, traits: dict[str, Any], due: str
) -> None:
    assert format_at(next_open(WEEKDAYS, _t(at), traits)) == due


def test_a_window_across_midnight() -> None:
    night = SendWindow(22 * 60, 2 * 60, frozenset(range(7)), "UTC")
    assert format_at(next_open(night, _t("2026-03-04T23:00:00Z"), {})) == "2026-03-04T23:00:00Z"
    assert format_at(next_open(night, _t("2026-03-05T01:00:00Z"), {})) == "2026-03-05T01:00:00Z"
    assert format_at(next_open(night, _t("2026-03-05T03:00:00Z"), {})) == "2026-03-05T22:00:00Z"


RULES = """
    triggers:
      - id: guide
        when: {event: Guide Downloaded}
        then:
          - send: {channel: email, template: t}
          - notify: {channel: sales, template: t}
    """
WINDOW = '  email: {adapter: console, send_window: {hours: "09:00-17:00", timezone: Europe/Berlin}}'


def _setup(tmp_path: Path, email: str = WINDOW) -> tuple[Path, Path]:
    rules_dir, config_dir = write_rules(tmp_path, RULES, {"t.txt": "hi"})
    (config_dir / "channels.yaml").write_text(
        CHANNELS.replace("  email: {adapter: console}", email)
    )
    return rules_dir, config_dir


def _guide(who: str, at: str) -> dict[str, Any]:
    return {"type": "track", "userId": who, "event": "Guide Downloaded", "timestamp": at}


def test_a_send_due_in_quiet_hours_waits_replay_shows_the_shifted_time(tmp_path: Path) -> None:
    rules, _ = load_rules(*_setup(tmp_path))
    events = [_guide("night", "2026-03-04T22:00:00Z"), _guide("day", "2026-03-05T10:00:00Z")]
    out = io.BytesIO()
    replay([EventFile(str(write_events(tmp_path / "e.jsonl", events)))], rules, out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    shown = [(r["prospect"], r["action"], r["at"], r.get("deliver_at")) for r in records]
    assert shown == [
        ("night", "send", "2026-03-04T22:00:00Z", "2026-03-05T08:00:00Z"),
        ("night", "notify", "2026-03-04T22:00:00Z", None),  # sales is told at once
        ("day", "send", "2026-03-05T10:00:00Z", None),
        ("day", "notify", "2026-03-05T10:00:00Z", None),
    ]


def test_a_channel_without_a_window_sends_at_once(tmp_path: Path) -> None:
    rules, _ = load_rules(*_setup(tmp_path, "  email: {adapter: console}"))
    out = io.BytesIO()
    events = [_guide("night", "2026-03-04T22:00:00Z")]
    replay([EventFile(str(write_events(tmp_path / "e.jsonl", events)))], rules, out)
    assert b"deliver_at" not in out.getvalue()


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ('{hours: "9-17"}', 'hours: "HH:MM-HH:MM"'),
        ('{hours: "09:00-17:00", days: [mon, funday]}', "unknown day 'funday'"),
        ('{hours: "09:00-17:00", timezone: Mars/Olympus}', "unknown time zone 'Mars/Olympus'"),
        ('{hours: "09:00-17:00", tz: UTC}', "unknown key 'tz'"),
    ],
)
def test_check_reports_a_bad_send_window_at_its_position(
    tmp_path: Path, window: str, message: str
) -> None:
    rules_dir, config_dir = _setup(
        tmp_path, f"  email: {{adapter: console, send_window: {window}}}"
    )
    with pytest.raises(RuleError) as caught:
        load_rules(rules_dir, config_dir)
    found = [p for p in caught.value.problems if p.message.startswith(message)]
    assert found and found[0].path.endswith("config/channels.yaml") and found[0].line == 4


def test_the_dispatcher_holds_a_quiet_hours_send_until_the_window(
    tmp_path: Path, store: Store
) -> None:
    rules, _ = load_rules(*_setup(tmp_path))
    clock = SimulatedClock(_t("2026-03-04T22:00:00Z"))
    service = Service(store, rules, clock)
    service.ingest([_guide("night", "2026-03-04T22:00:00Z") | {"messageId": "g1"}])
    service.process_pending()
    memory = {
        name: replace(ch, adapter="memory", settings={}) for name, ch in rules.channels.items()
    }
    MemoryAdapter.clear()
    sender = Dispatcher(
        store, replace(rules, channels=memory), TemplateSet(tmp_path / "rules" / "templates"), clock
    )
    sender.drain()
    assert [m.channel for m in MemoryAdapter.sent("sales")] == ["sales"]
    assert MemoryAdapter.sent("email") == []
    [held] = outbox(store, "pending")
    assert format_at(held.next_attempt_at) == "2026-03-05T08:00:00Z"
    clock.advance_to(_t("2026-03-05T08:00:00Z"))
    sender.drain()
    assert len(MemoryAdapter.sent("email")) == 1


CAPPED = """
    triggers:
      - id: guide
        when: {event: Guide Downloaded}
        then:
          - send: {channel: email, template: t}
          - start_sequence: drip
    sequences:
      drip:
        steps:
          - wait: 1d
          - send: {channel: email, template: t}
          - wait: 1d
          - send: {channel: email, template: t}
    """


def test_at_most_n_sends_within_d_per_prospect_across_sequences(tmp_path: Path) -> None:
    rules_dir, config_dir = write_rules(tmp_path, CAPPED, {"t.txt": "hi"})
    email = "  email: {adapter: console, send_cap: {times: 2, per: 7d}}"
    (config_dir / "channels.yaml").write_text(
        CHANNELS.replace("  email: {adapter: console}", email)
    )
    rules, _ = load_rules(rules_dir, config_dir)
    events = [_guide("u1", "2026-03-02T10:00:00Z"), _guide("u1", "2026-03-10T10:00:00Z")]
    out = io.BytesIO()
    replay(
        [EventFile(str(write_events(tmp_path / "e.jsonl", events)))],
        rules,
        out,
        until=_t("2026-03-20T00:00:00Z"),
    )
    sends = [json.loads(x) for x in out.getvalue().splitlines() if b'"send"' in x]
    # Day 0 and day 1 are sent; day 2 would be the third within 7d: no record. A week later
    # the window has room again.
    assert [(s["at"], s.get("step")) for s in sends] == [
        ("2026-03-02T10:00:00Z", None),
        ("2026-03-03T10:00:00Z", 2),
        ("2026-03-10T10:00:00Z", None),
        ("2026-03-11T10:00:00Z", 2),
    ]


def test_send_counts_survive_the_state_document() -> None:
    from leadrules.engine.core.state import ProspectState
    from leadrules.engine.daemon.codec import decode, encode

    state = ProspectState("u1", sends={"email": [1, 2]})
    assert decode(encode(state)).sends == {"email": [1, 2]}
    older = {k: v for k, v in encode(state).items() if k != "sends"}
    assert decode(older).sends == {}


def test_check_reports_a_bad_send_cap(tmp_path: Path) -> None:
    rules_dir, config_dir = _setup(
        tmp_path, "  email: {adapter: console, send_cap: {times: 0, per: 7d}}"
    )
    with pytest.raises(RuleError) as caught:
        load_rules(rules_dir, config_dir)
    assert any(p.message.startswith("times: a whole number") for p in caught.value.problems)


def test_sla_clocks_may_count_business_hours_only(tmp_path: Path) -> None:
    rules_text = """
        scoring:
          rules:
            - {id: demo, when: {event: Demo Requested}, points: 100}
        lifecycle:
          mql_threshold: 80
          sla:
            accept_within: 4h
            business_hours: {hours: "09:00-17:00", timezone: Europe/Berlin}
            on_breach:
              - notify: {channel: sales-managers, template: t}
        """
    rules_dir, config_dir = write_rules(tmp_path, rules_text, {"t.txt": "late"})
    rules, _ = load_rules(rules_dir, config_dir)
    events = [  # Friday 16:00 Berlin: 1h on Friday, 3h on Monday from 09:00
        {
            "type": "track",
            "userId": "u1",
            "event": "Demo Requested",
            "timestamp": "2026-03-06T15:00:00Z",
        }
    ]
    out = io.BytesIO()
    source = EventFile(str(write_events(tmp_path / "e.jsonl", events)))
    replay([source], rules, out, until=_t("2026-03-20T00:00:00Z"))
    breaches = [json.loads(x) for x in out.getvalue().splitlines() if b"lifecycle.sla" in x]
    assert [b["at"] for b in breaches] == ["2026-03-09T11:00:00Z"]  # Monday 12:00 Berlin


def test_business_hours_may_not_cross_midnight(tmp_path: Path) -> None:
    rules_text = """
        lifecycle:
          mql_threshold: 80
          sla:
            accept_within: 4h
            business_hours: {hours: "22:00-06:00"}
        """
    rules_dir, config_dir = write_rules(tmp_path, rules_text)
    with pytest.raises(RuleError) as caught:
        load_rules(rules_dir, config_dir)
    assert [p.message for p in caught.value.problems] == ["hours: may not cross midnight"]
