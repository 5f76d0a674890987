"""E-mail over SMTP: multipart text and HTML, a `Message-ID` derived from the idempotency key
(so a receiver can drop a repeat), and `List-Unsubscribe` on messages to prospects.

The HTML part is the message's own `html` when the dispatcher rendered one (the template as
Markdown with every value escaped: TemplateSet.render_html), else the text rendered as Markdown
by markdown-it with raw HTML off, so `<b>` in the text is shown, not obeyed. Before that, each
string of the template variables (`context`: prospect data) is Markdown-escaped where it
appears in the text, so a trait `[click](https://…)` stays text too. Escaping can only take
markup away (an escaped mark shows as itself), never add it."""

from __future__ import annotations

import hashlib
import re
import smtplib
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from markdown_it import MarkdownIt

from leadrules.adapters.base import Adapter, AdapterSettings, Message, Receipt
from leadrules.engine.errors import DeliveryError


class SmtpSettings(AdapterSettings):
    host: str
    port: int = 25
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    ssl: bool = False
    timeout: float = 10.0
    to: str | None = None  # where messages to sales go
    list_unsubscribe: str | None = None  # e.g. "<mailto:unsubscribe@example.com>"


_MARKDOWN = MarkdownIt("commonmark", {"html": False})
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # CommonMark's escapable ASCII
_MAX_VALUES = 1_000


def _strings(value: Any, out: set[str]) -> None:
    if isinstance(value, str):
        if _PUNCTUATION.search(value):
            out.add(value)
    elif isinstance(value, dict):
        for item in value.values():
            _strings(item, out)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _strings(item, out)


def escape_values(text: str, context: dict[str, Any]) -> str:
    """`text` with every string of `context` that it contains Markdown-escaped (longest
    first, so a value inside a longer one does not spoil the longer one's escape)."""
    found: set[str] = set()
    _strings(context, found)
    for value in sorted(found, key=len, reverse=True)[:_MAX_VALUES]:
        if value in text:
            text = text.replace(value, _PUNCTUATION.sub(r"\\\1", value))
    return text


def to_html(text: str, body: str | None = None, context: dict[str, Any] | None = None) -> str:
    """An HTML document: `body` (HTML already rendered) or `text` rendered as Markdown, with
    the values of `context` in it escaped first."""
    inner = body if body is not None else _MARKDOWN.render(escape_values(text, context or {}))
    return f'<!doctype html><html><head><meta charset="utf-8"></head><body>{inner}</body></html>'


class SmtpAdapter(Adapter):
    settings_model = SmtpSettings
    settings: SmtpSettings

    def build(self, message: Message) -> EmailMessage:
        recipient = message.to if message.audience == "prospect" else self.settings.to
        if not recipient:
            what = (
                "prospect has no email trait"
                if message.audience == "prospect"
                else "no `to` for sales"
            )
            raise DeliveryError(f"smtp channel {self.channel!r}: {what}", retryable=False)
        email = EmailMessage()
        email["From"] = self.settings.sender
        email["To"] = recipient
        email["Subject"] = message.subject
        email["Date"] = formatdate(usegmt=True)
        digest = hashlib.sha256(message.key.encode()).hexdigest()[:32]
        domain = self.settings.sender.rpartition("@")[2] or "leadrules.local"
        email["Message-ID"] = f"<{digest}@{domain}>"
        email["X-Leadrules-Idempotency-Key"] = message.key
        if message.audience == "prospect" and self.settings.list_unsubscribe:
            email["List-Unsubscribe"] = self.settings.list_unsubscribe
            email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        email.set_content(message.text)
        email.add_alternative(to_html(message.text, message.html, message.context), subtype="html")
        return email

    def send(self, message: Message) -> Receipt:
        email = self.build(message)
        settings = self.settings
        factory = smtplib.SMTP_SSL if settings.ssl else smtplib.SMTP
        try:
            with factory(settings.host, settings.port, timeout=settings.timeout) as client:
                if settings.starttls:
                    client.starttls()
                if settings.username:
                    client.login(self.setting("username"), self.setting("password") or "")
                client.send_message(email)
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"smtp {exc.smtp_code}: {exc.smtp_error!r}", retryable=exc.smtp_code < 500
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(
                f"smtp refused recipients: {exc.recipients}", retryable=False
            ) from exc
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"smtp {settings.host}:{settings.port}: {exc}", retryable=True
            ) from exc
        return Receipt("smtp", email["Message-ID"])
