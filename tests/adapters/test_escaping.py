"""Templates and output under hostile data: the Jinja2 sandbox refuses attribute walking (at
`check` where visible, at render always); a trait holding template syntax is printed, never
run; e-mail HTML is escaped; Slack text is escaped by Slack's rules so a trait cannot
mention `<!channel>` or smuggle a link. Through the real dispatcher and real receivers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from leadrules.adapters.base import Message
from leadrules.adapters.memory import MemoryAdapter
from leadrules.adapters.smtp import SmtpAdapter
from leadrules.engine.clock import SimulatedClock
from leadrules.engine.core.ruleset import Channel
from leadrules.engine.daemon.dispatch import Dispatcher, outbox
from leadrules.engine.daemon.service import Service
from leadrules.engine.daemon.store import Store
from leadrules.engine.language.loader import load_rules
from leadrules.engine.language.templates import TemplateSet
from leadrules.engine.timefmt import parse_timestamp
from tests.receivers import HttpReceiver, SmtpReceiver

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = (
    '<script>alert("x")</script> {{ 7*7 }} {% for x in range(3) %}loop{% endfor %} '
    "<!channel> <https://evil.example|click here> <@U024BE7LH> & co"
)
EXPLOITS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ traits.__class__ }}",
    "{{ traits['__class__'] }}",
    "{{ joiner.__init__.__globals__.os }}",
]


def hostile_events() -> list[dict[str, Any]]:
    at = "2026-03-04T10:00:0{}Z"
    return [
        {
            "type": "identify",
            "userId": "u-evil",
            "messageId": "e1",
            "timestamp": at.format(0),
            "traits": {"name": HOSTILE, "email": "evil@example.com", "title": "<!here>"},
        },
        {"type": "track", "userId": "u-evil", "event": "<!everyone> hi", "messageId": "e2",
         "timestamp": at.format(1)},
        {"type": "track", "userId": "u-evil", "event": "Demo Requested", "messageId": "e3",
         "timestamp": at.format(2)},
    ]  # fmt: skip


def test_slack_text_is_escaped_and_trait_template_syntax_is_not_run(
    tmp_path: Path, http: HttpReceiver
) -> None:
    store = Store(f"sqlite:///{tmp_path}/lr.db")
    store.migrate()
    clock = SimulatedClock(parse_timestamp("2026-03-04T10:01:00Z"))
    rules = load_rules(ROOT / "rules", ROOT / "config")[0]
    service = Service(store, rules, clock)
    assert service.ingest(hostile_events()).errors == []
    service.process_pending()
    channels = {n: Channel(n, "memory", {}) for n in rules.channels}
    channels["sales"] = Channel("sales", "slack", {"webhook_url": http.url})
    MemoryAdapter.clear()
    sender = Dispatcher(
        store, replace(rules, channels=channels), TemplateSet(ROOT / "rules" / "templates"), clock
    )
    sender.drain()
    assert [r.status for r in outbox(store) if r.channel == "sales"] == ["sent"]
    (request,) = http.requests
    payload = json.loads(request.body)
    parsed = [payload["text"]] + [
        t["text"]
        for block in payload["blocks"]
        for t in [block.get("text") or {}, *block.get("fields", []), *block.get("elements", [])]
        if t and t.get("type") == "mrkdwn"
    ]
    everything = "\n".join(parsed)
    assert "&lt;!channel&gt;" in everything and "&lt;!everyone&gt; hi" in everything
    for injected in ("<!channel>", "<!everyone>", "<!here>", "<https://", "<@U0", "<script"):
        assert injected not in everything, injected
    assert "&amp; co" in everything
    assert "{{ 7*7 }}" in everything and "49" not in everything and "looploop" not in everything
    store.dispose()


def test_email_html_is_escaped_and_trait_template_syntax_is_printed(smtp: SmtpReceiver) -> None:
    templates = TemplateSet(ROOT / "rules" / "templates")
    subject, text = templates.render(
        "industry-follow-up", {"traits": {"name": HOSTILE, "industry": "<b>bold</b>"}}
    )
    assert subject is not None and "{{ 7*7 }}" in text and "49" not in text
    adapter = SmtpAdapter("email", {"host": smtp.host, "port": smtp.port, "sender": "m@x.example"})
    record = {"prospect": "u-evil", "action": "send", "rule": "r", "template": "t"}
    adapter.send(Message("k1", "email", "prospect", record, subject, text, to="evil@example.com"))
    ((_, _, email),) = smtp.messages
    parts = {
        p.get_content_type(): p.get_payload(decode=True).decode()
        for p in email.walk()
        if not p.is_multipart()
    }
    html = parts["text/html"]
    assert "<script" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;" in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "{{ 7*7 }}" in html and "49" not in html and "looploop" not in html
    assert HOSTILE in parts["text/plain"]  # the text part carries the value as it is


@pytest.mark.parametrize("source", EXPLOITS)
def test_the_sandbox_refuses_attribute_walking_at_check_and_at_render(
    tmp_path: Path, source: str
) -> None:
    (tmp_path / "evil.md").write_text(f"Subject: hi\nline two {source}\n")
    templates = TemplateSet(tmp_path)
    problems = [p for p in templates.problems() if "starting with `_`" in p.message]
    assert problems and all(p.line == 2 and p.col > 1 for p in problems)
    with pytest.raises(Exception) as refused:
        templates.render("evil", {"traits": {"name": "x"}})
    assert type(refused.value).__name__ == "SecurityError"


@pytest.mark.parametrize(
    "source",
    [
        '{% set k = "__cla" ~ "ss__" %}{{ (""|attr(k)).__name__ }}',
        '{% set k = "__cla" ~ "ss__" %}{{ ""[k] }}',
        '{{ traits.update({"name": "owned"}) }}',
        '{{ "x" * 1000000000 }}',
        "{{ 2 ** 1000000 }}",
        "{{ range(10000000)|list|length }}",
    ],
)
def test_what_check_cannot_see_is_refused_at_render_and_dead_lettered(
    tmp_path: Path, source: str
) -> None:
    (tmp_path / "evil.md").write_text(source)
    store = Store(f"sqlite:///{tmp_path}/lr.db")
    store.migrate()
    clock = SimulatedClock(parse_timestamp("2026-03-04T10:01:00Z"))
    rules = load_rules(ROOT / "rules", ROOT / "config")[0]
    service = Service(store, rules, clock)
    service.ingest(hostile_events())
    service.process_pending()
    MemoryAdapter.clear()
    channels = {n: Channel(n, "memory", {}) for n in rules.channels}
    sender = Dispatcher(store, replace(rules, channels=channels), TemplateSet(tmp_path), clock)
    with store.session() as session:  # point the demo notification at the evil template
        (row,) = [r for r in outbox(store) if r.rule == "demo-request"]
        record = json.loads(row.record)
        row.record = json.dumps({**record, "template": "evil"})
        session.add(row)
        session.commit()
    sender.drain()
    (dead,) = [r for r in outbox(store) if r.rule == "demo-request"]
    assert dead.status == "dead" and "template 'evil' failed" in (dead.last_error or "")
    assert "owned" not in json.dumps([m.text for m in MemoryAdapter.sent("sales")])
    store.dispose()


def test_leadrules_check_reports_the_exploit_with_its_position(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    shutil.copytree(ROOT / "config", tmp_path / "config")
    (tmp_path / "rules" / "templates" / "demo-request.md").write_text(
        "Subject: hi\n{{ cycler.__init__.__globals__ }}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "leadrules.engine.cli", "check"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "demo-request.md:2:" in done.stdout and "'__globals__'" in done.stdout
