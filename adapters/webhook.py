"""A JSON webhook — the way to create CRM tasks. The request carries `Idempotency-Key` and,
with a `secret`, a Stripe-style signature over a timestamp and the exact body:

    X-Leadrules-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">

Because the timestamp is signed, a receiver that refuses signatures older than a few minutes
cannot be fooled by a captured request sent again later (docs/reliability.md shows the check;
`verify` below is the same check for Python receivers)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from pydantic import Field

from leadrules.adapters.base import Adapter, AdapterSettings, Message, Receipt, resolve_env
from leadrules.adapters.http import post

HEADER = "X-Leadrules-Signature"
TOLERANCE_S = 300


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


def signature(secret: str, content: bytes, timestamp: int) -> str:
    """The header value: `t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`."""
    signed = str(timestamp).encode() + b"." + content
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(
    secret: str, header: str, content: bytes, now: float, tolerance: int = TOLERANCE_S
) -> bool:
    """The receiver's check: a `v1` HMAC over `t.body` that matches (in constant time) and a
    `t` within `tolerance` seconds of `now`."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    stamp = parts.get("t", "")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        return False
    if abs(now - int(stamp)) > tolerance:
        return False
    signed = stamp.encode() + b"." + content
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), parts.get("v1", "").encode())


class WebhookAdapter(Adapter):
    settings_model = WebhookSettings
    settings: WebhookSettings
    now: Callable[[], float] = staticmethod(time.time)  # the signing clock (tests replace it)

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
            # Signed per attempt: a retry carries a fresh timestamp, the same key and body.
            headers[HEADER] = signature(self.setting("secret"), content, int(self.now()))
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
