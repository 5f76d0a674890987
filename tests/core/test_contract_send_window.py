"""Send windows in the decision records: a `send` decided in its channel's quiet hours keeps
its `at` and carries `deliver_at`, the window's next opening; one decided while the window is
open carries none, and a `notify` (to sales) is never held."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from leadrules.engine.language.loader import load_rules
from leadrules.engine.replay.dry_run import replay
from leadrules.engine.replay.sources import EventFile
from tests.scenario import at, track, write_events, write_rules

RULES = """
triggers:
  - id: ping
    when: {event: Ping}
    then:
      - send: {channel: email, template: x}
      - notify: {channel: sales, template: x}
"""
WINDOWED = """\
channels:
  email: {adapter: console, send_window: {hours: "09:00-17:00", timezone: Europe/Berlin}}
  sales: {adapter: console, send_window: {hours: "09:00-17:00", timezone: Europe/Berlin}}
"""


def records(tmp_path: Path, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rules_dir, config_dir = write_rules(tmp_path, RULES, {"x.md": "hello"})
    (config_dir / "channels.yaml").write_text(WINDOWED)
    ruleset, _ = load_rules(rules_dir, config_dir, references="warn")
    out = io.BytesIO()
    replay([EventFile(str(write_events(tmp_path / "e.jsonl", events)))], ruleset, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_send_window_a_send_in_quiet_hours_waits_for_the_next_opening(tmp_path: Path) -> None:
    # at(0) is Monday 09:00 UTC (10:00 in Berlin, open); +11h is 21:00 in Berlin (closed).
    got = records(tmp_path, [track("u", at(0), "Ping"), track("u", at(hours=11), "Ping")])
    sends = [(r["at"], r.get("deliver_at")) for r in got if r["action"] == "send"]
    assert sends == [(at(0), None), (at(hours=11), at(days=1, hours=-1))]  # Tue 09:00 Berlin


def test_send_window_never_holds_a_notify_to_sales(tmp_path: Path) -> None:
    got = records(tmp_path, [track("u", at(hours=11), "Ping")])
    notify = [r for r in got if r["action"] == "notify"]
    assert len(notify) == 1 and "deliver_at" not in notify[0]


def test_send_window_on_a_channel_without_one_nothing_waits(tmp_path: Path) -> None:
    rules_dir, config_dir = write_rules(tmp_path, RULES, {"x.md": "hello"})
    ruleset, _ = load_rules(rules_dir, config_dir, references="warn")
    out = io.BytesIO()
    source = write_events(tmp_path / "e.jsonl", [track("u", at(hours=11), "Ping")])
    replay([EventFile(str(source))], ruleset, out)
    assert all("deliver_at" not in json.loads(line) for line in out.getvalue().splitlines())
