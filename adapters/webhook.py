"""A JSON webhook — the way to create CRM tasks. The body is signed with HMAC-SHA256 over its
exact bytes (`X-Leadrules-Signature: sha256=<hex>`) and carries `Idempotency-Key`."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import httpx
import orjson
from pydantic import Field

from leadrules.adapters.base import Adapter, AdapterSettings, Message, Receipt, resolve_env
from leadrules.adapters.http import post


class WebhookSettings(AdapterSettings):
    url: str
    secret: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = 10.0


def body(message: Message) -> bytes:
    """The request body, serialised once and deterministically (what the signature covers)."""
    payload = {
        "key": message.key,
        "channel": message.channel,
        "audience": message.audience,
        "record": message.record,
        "subject": message.subject,
        "text": message.text,
        "context": message.context,
    }
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)


def signature(secret: str, content: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), content, hashlib.sha256).hexdigest()


class WebhookAdapter(Adapter):
    settings_model = WebhookSettings
    settings: WebhookSettings

    def __init__(self, channel: str, settings: dict[str, Any]) -> None:
        super().__init__(channel, settings)
        self._client = httpx.Client(timeout=self.settings.timeout)

    def send(self, message: Message) -> Receipt:
        content = body(message)
        headers = {
            **{
                name: resolve_env(value, setting=f"headers.{name}")
                for name, value in self.settings.headers.items()
            },
            "Content-Type": "application/json",
            "Idempotency-Key": message.key,
        }
        if self.settings.secret is not None:
            headers["X-Leadrules-Signature"] = signature(self.setting("secret"), content)
        post(
            self._client,
            self.setting("url"),
            content=content,
            headers=headers,
            what=f"webhook channel {self.channel!r}",
        )
        return Receipt("webhook", message.key)

    def close(self) -> None:
        self._client.close()
