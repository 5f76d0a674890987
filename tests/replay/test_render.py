"""`leadrules replay --render`: each message rendered in the dry run, so a template that
compiles but fails at render time is caught before production; `event` and the properties
kept in `recent` tell sales which video or page it was."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

RULES = """\
triggers:
  - id: video
    when: {event: Video Watched}
    then:
      - notify: {channel: sales, template: watched}
"""

EVENTS = [
    {
        "type": "page",
        "userId": "u-1",
        "timestamp": "2026-03-02T09:00:00Z",
        "properties": {"path": "/pricing", "title": "Pricing", "url": "https://x.example/pricing"},
        "messageId": "m1",
    },
    {
        "type": "track",
        "userId": "u-1",
        "event": "Video Watched",
        "timestamp": "2026-03-02T09:05:00Z",
        "properties": {"category": "case-study", "title": "How Globex answers" + "!" * 500},
        "messageId": "m2",
    },
]


def _setup(tmp_path: Path, template: str) -> tuple[Path, Path, Path]:
    rules = tmp_path / "rules"
    (rules / "templates").mkdir(parents=True)
    (rules / "triggers.yaml").write_text(RULES)
    (rules / "templates" / "watched.md").write_text(template)
    config = tmp_path / "config"
    config.mkdir()
    (config / "channels.yaml").write_text("channels:\n  sales: {adapter: console}\n")
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    return rules, config, events


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "leadrules.engine.cli", *args], capture_output=True, text=True
    )


def test_a_template_that_fails_only_at_render_time_fails_the_dry_run(tmp_path: Path) -> None:
    template = "Subject: hot lead\nScore: {{ score }}\nRatio: {{ score // (score - score) }}\n"
    rules, config, events = _setup(tmp_path, template)
    assert _cli("check", "--rules", str(rules), "--config", str(config)).returncode == 0
    plain = _cli("replay", str(events), "--rules", str(rules), "--config", str(config))
    assert plain.returncode == 0  # without --render the error stays hidden
    done = _cli("replay", str(events), "--render", "--rules", str(rules), "--config", str(config))
    assert done.returncode == 1, done.stderr
    assert f"{rules / 'templates' / 'watched.md'}:3: ZeroDivisionError" in done.stderr
    assert "messages rendered: 0; failed: 1" in done.stderr


def test_messages_show_the_event_and_what_was_consumed(tmp_path: Path) -> None:
    template = (
        "Subject: {{ event.event }}: {{ event.title }}\n"
        "{{ event.category }}\n"
        "{% for e in recent %}{{ e.path or e.event }} | {{ e.title }} | {{ e.url }}\n{% endfor %}"
    )
    rules, config, events = _setup(tmp_path, template)
    assert _cli("check", "--rules", str(rules), "--config", str(config)).returncode == 0
    done = _cli("replay", str(events), "--render", "--rules", str(rules), "--config", str(config))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    subject = next(line for line in lines if line.startswith("Subject: "))
    title = subject.removeprefix("Subject: Video Watched: ")
    assert title.startswith("How Globex answers!!!") and title.endswith("…")
    assert len(title) == 200  # long properties are cut
    assert "case-study" in lines
    assert "/pricing | Pricing | https://x.example/pricing" in lines
    assert "messages rendered: 1; failed: 0" in done.stderr
