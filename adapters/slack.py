"""Slack incoming webhook: a Block Kit message a rep can act on — who, score and stage, the
top reasons, recent activity, the SLA deadline, and the rendered template.

Every text Slack parses as mrkdwn is escaped by Slack's rules (`&`, `<`, `>`), so a trait or
an event name cannot mention `<!channel>`, ping a user or smuggle a link. Plain-text blocks
(the header) are not parsed by Slack and are sent as they are."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from leadrules.adapters.base import Adapter, AdapterSettings, Message, Receipt
from leadrules.adapters.http import post


def escape(text: object) -> str:
    """Slack's escaping for text it parses: `&`, `<` and `>` as entities, nothing else."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackSettings(AdapterSettings):
    webhook_url: str
    timeout: float = 10.0


def _who(message: Message) -> str:
    traits = message.context.get("traits") or {}
    name = traits.get("name") or traits.get("email") or message.record.get("prospect")
    company = traits.get("company")
    company_name = company.get("name") if isinstance(company, dict) else company
    title = traits.get("title")
    parts = [str(name)] + [str(p) for p in (title, company_name) if p]
    return " · ".join(parts)


def blocks(message: Message) -> dict[str, Any]:
    """The Slack payload for a message (Block Kit plus a plain-text fallback)."""
    record, context = message.record, message.context
    header = f"{_who(message)} — score {record.get('score')}, {record.get('stage')}"
    out: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header[:150]}},
    ]
    if message.text.strip():
        out.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": escape(message.text.strip())[:2900]},
            }
        )
    fields = [{"type": "mrkdwn", "text": f"*Rule*\n{escape(record.get('rule'))}"}]
    if context.get("sla_deadline"):
        fields.append({"type": "mrkdwn", "text": f"*Accept by*\n{escape(context['sla_deadline'])}"})
    out.append({"type": "section", "fields": fields})
    reasons = context.get("reasons") or []
    if reasons:
        lines = [f"{r['points']:+d}  {escape(r['rule'])}" for r in reasons[:5]]
        out.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Why*\n" + "\n".join(lines)}}
        )
    recent = context.get("recent") or []
    if recent:
        lines = [
            f"{e.get('at', '')[:16]}  {escape(e.get('event') or e.get('path') or e.get('type'))}"
            for e in recent[:5]
        ]
        out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "\n".join(lines)}]})
    return {"text": escape(f"{message.subject}: {header}"), "blocks": out}


class SlackAdapter(Adapter):
    settings_model = SlackSettings
    settings: SlackSettings

    def __init__(self, channel: str, settings: dict[str, Any]) -> None:
        super().__init__(channel, settings)
        self._client = httpx.Client(timeout=self.settings.timeout)

    def send(self, message: Message) -> Receipt:
        url = self.setting("webhook_url")
        body = orjson.dumps(blocks(message))
        headers = {"Content-Type": "application/json", "Idempotency-Key": message.key}
        post(
            self._client, url, content=body, headers=headers, what=f"slack channel {self.channel!r}"
        )
        return Receipt("slack", message.key)

    def close(self) -> None:
        self._client.close()
