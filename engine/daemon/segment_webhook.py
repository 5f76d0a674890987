"""`POST /v1/webhook`: events forwarded by a hosted pipeline rather than sent by a tracker.

Segment's Webhooks (Actions) destination and RudderStack's Webhook destination post the
event as it is, one JSON object per request (Segment's batching sends a JSON array of them).
Segment signs the body when the destination has a shared secret: `X-Signature` is the hex
HMAC-SHA1 of the body with that secret, checked here in constant time against
`ingest.segment_webhook_secret`. A request without a signature needs a write key, as on the
tracking routes (RudderStack's destination sends it as a custom `Authorization` header).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from leadrules.engine.daemon.ingest_http import Ingest, Refused, refusal

PATH = "/v1/webhook"


def signature(secret: str, body: bytes) -> str:
    """What Segment puts in `X-Signature` for `body`."""
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def check_signature(secret: str | None, given: str, body: bytes) -> None:
    """Raises Refused (401) unless `given` is the body's signature with the secret."""
    if secret is None:
        raise Refused(401, "X-Signature sent but no secret is set (ingest.segment_webhook_secret)")
    if not hmac.compare_digest(given.strip().lower().encode(), signature(secret, body).encode()):
        raise Refused(401, "X-Signature does not match the body (HMAC-SHA1, shared secret)")


def forwarded_messages(payload: Any) -> list[Any]:
    """One event (an object) or Segment's batch of them (an array)."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        return [payload]
    raise Refused(400, "body must be one event (a JSON object) or a JSON array of events")


def add_webhook_route(app: FastAPI, ingest: Ingest) -> str:
    async def post_webhook(request: Request) -> Response:
        try:
            raw, payload = await ingest.read(request)
            given = request.headers.get("x-signature")
            if given is not None:
                # Signed over the bytes as sent, before any decompression.
                check_signature(ingest.limits.resolved_segment_webhook_secret(), given, raw)
            else:
                ingest.authorize(request, payload)
            messages = forwarded_messages(payload)
        except Refused as exc:
            return refusal(exc)
        return await ingest.store(messages)

    app.add_api_route(PATH, post_webhook, methods=["POST"], name="post webhook")
    return PATH
