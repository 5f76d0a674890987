"""The e-mail's HTML part: the template's Markdown rendered (markdown-it), prospect data never
turned into markup. Checked in the message a real SMTP server (aiosmtpd) received."""

from __future__ import annotations

import json
from email.message import Message as EmailMessage
from pathlib import Path

import pytest

from leadrules.adapters.base import Message
from leadrules.adapters.smtp import SmtpAdapter
from leadrules.engine.clock import SimulatedClock
from leadrules.engine.daemon.dispatch import Dispatcher
from leadrules.engine.daemon.store import DecisionRow
from leadrules.engine.language.loader import load_rules
from leadrules.engine.language.templates import TemplateSet
from tests.receivers import SmtpReceiver

TEMPLATE = """Subject: Welcome, {{ traits.name }}

Hi **{{ traits.name }}**, thanks for visiting.

- your company: {{ traits.company }}
- shouted: {{ traits.company | upper }}
- [Book a demo](https://example.com/demo)
"""
HOSTILE = {
    "name": '<b>Ann</b><script>alert("x")</script>',
    "company": "[click here](https://phish.example) **urgent** <img src=x onerror=alert(1)>",
    "email": "ann@acme.example",
}


def adapter(smtp: SmtpReceiver) -> SmtpAdapter:
    return SmtpAdapter("email", {"host": smtp.host, "port": smtp.port, "sender": "m@example.com"})


def parts(email: EmailMessage) -> tuple[str, str]:
    text, html = email.get_payload()
    return (
        text.get_payload(decode=True).decode(),
        html.get_payload(decode=True).decode(),
    )


def send(smtp: SmtpReceiver, text: str, html: str | None = None) -> tuple[str, str]:
    adapter(smtp).send(
        Message(
            key="k1",
            channel="email",
            audience="prospect",
            record={},
            subject="s",
            text=text,
            html=html,
            to="ann@acme.example",
        )
    )
    ((_, _, email),) = smtp.messages
    return parts(email)


def test_markdown_text_is_rendered_and_raw_html_in_it_stays_text(smtp: SmtpReceiver) -> None:
    text, html = send(smtp, "Hi **Ann** <b>x</b>\n\n- one\n- [site](https://a.example)\n")
    assert text.startswith("Hi **Ann** <b>x</b>")
    assert "<strong>Ann</strong>" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>" not in html
    assert '<li><a href="https://a.example">site</a></li>' in html
    assert "**" not in html


def test_prospect_data_in_a_template_never_becomes_markup(
    smtp: SmtpReceiver, tmp_path: Path
) -> None:
    (tmp_path / "welcome.md").write_text(TEMPLATE)
    templates = TemplateSet(tmp_path)
    context = {"traits": HOSTILE, "score": 1}
    subject, body = templates.render("welcome", context)
    text, html = send(smtp, body, templates.render_html("welcome", context))
    assert subject == 'Welcome, <b>Ann</b><script>alert("x")</script>'
    assert "[click here](https://phish.example)" in text  # the text part is the text
    # the template's own Markdown is rendered ...
    assert "<strong>" in html and '<a href="https://example.com/demo">Book a demo</a>' in html
    # ... the values are not: no tag, link or emphasis made from a trait
    for made in ("<b>", "<script", "<img", 'phish.example"', "<em>urgent", "<strong>urgent"):
        assert made not in html, made
    assert "&lt;script&gt;" in html and "[click here](https://phish.example)" in html
    assert "**urgent**" in html


def test_a_message_from_the_dispatcher_keeps_prospect_data_as_text(
    smtp: SmtpReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dispatcher's message as the daemon builds it from the outbox row (rendered text,
    the template variables beside it), through the real SMTP adapter and server."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules" / "templates").mkdir(parents=True)
    (tmp_path / "rules" / "templates" / "welcome.md").write_text(TEMPLATE)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "channels.yaml").write_text("channels:\n  email: {adapter: memory}\n")
    rules, _ = load_rules(Path("rules"), Path("config"))
    templates = TemplateSet(Path("rules/templates"))
    dispatcher = Dispatcher(None, rules, templates, SimulatedClock())  # type: ignore[arg-type]
    record = {"action": "send", "prospect": "u1", "rule": "r", "channel": "email"}
    row = DecisionRow(
        key="k1",
        at=0,
        prospect="u1",
        action="send",
        rule="r",
        channel="email",
        record=json.dumps({**record, "template": "welcome"}),
        context=json.dumps({"traits": HOSTILE, "score": 1}),
        next_attempt_at=0,
        created_at=0,
    )
    message = dispatcher.message(row)
    assert message.html is not None  # the dispatcher renders the HTML part from the template
    adapter(smtp).send(message)
    ((_, recipients, email),) = smtp.messages
    assert recipients == ["ann@acme.example"]
    _, html = parts(email)
    assert "<strong>" in html and '<a href="https://example.com/demo">' in html
    for made in ("<b>", "<script", "<img", 'phish.example"', "<em>urgent", "<strong>urgent"):
        assert made not in html, made
    # a value changed by a filter is escaped too: no link made from the upper-cased trait
    assert 'PHISH.EXAMPLE"' not in html and "[CLICK HERE](HTTPS://PHISH.EXAMPLE)" in html
    assert "[click here](https://phish.example)" in html and "**urgent**" in html
