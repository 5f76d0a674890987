"""E-mail over SMTP: multipart text and HTML, a `Message-ID` derived from the idempotency key
(so a receiver can drop a repeat), and `List-Unsubscribe` on messages to prospects."""

from __future__ import annotations

import hashlib
import html
import smtplib
from email.message import EmailMessage
from email.utils import formatdate

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


def to_html(text: str) -> str:
    """Plain text or light Markdown as simple HTML paragraphs."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    body = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)
    return f"<!doctype html><html><body>{body}</body></html>"


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
        email.add_alternative(to_html(message.text), subtype="html")
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
