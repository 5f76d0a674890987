"""Segment's tracking API: the routes its own trackers and server clients post to.

`POST /v1/batch` (and analytics.js's `/v1/b`) takes `{"batch": [...]}`; `/v1/track`, `/page`,
`/identify`, `/group`, `/alias`, `/screen` and their short names `/v1/t /p /i /g /a /s` take
one message. Bodies are JSON whatever the `Content-Type` says (analytics.js sends
`text/plain` to spare the browser a preflight), optionally `Content-Encoding: gzip`.

The write key is the HTTP Basic user name, else the body's `writeKey` (older analytics.js
and `sendBeacon` on page unload cannot send a header). It is compared in constant time with
every configured key, and removed with any other credential field before a message is
stored: the event log is exported and shown, a write key must not be in it.

`200 {"success": true}` means every message is stored durably; a request with invalid
messages gets `400` with one error per message (index and field) and its valid messages are
kept. Segment's limits apply: 32 KB per message, 500 KB per request; a `Content-Length`
over the limit is refused (413) before the body is read, a chunked body as soon as it
passes the limit, a gzip body as soon as it inflates past it. Each write key may post
`ingest.rate_limit` requests (`429` with `Retry-After` past it, `rate_limit`); a database
that cannot be reached answers `503` with `Retry-After` (`api`, `db_outage`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
import zlib
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from leadrules.engine.daemon.metrics import Metrics
from leadrules.engine.daemon.rate_limit import RateLimiter
from leadrules.engine.language.settings import Settings


class IngestHost(Protocol):
    """What the HTTP layer needs from the daemon (`runtime.Daemon` implements it)."""

    settings: Settings
    metrics: Metrics

    def write_keys(self) -> list[str]: ...

    async def ingest(self, messages: list[Any], indices: list[int]) -> list[dict[str, Any]]: ...

    def health(self) -> dict[str, Any]: ...

    def refresh_gauges(self) -> None: ...


TYPES = ("track", "page", "identify", "group", "alias", "screen")
SHORT = {kind[0]: kind for kind in TYPES}  # analytics.js: /v1/t /v1/p /v1/i /v1/g /v1/a /v1/s
BATCH_PATHS = ("/v1/batch", "/v1/b")
# Fields trackers add that hold a credential: never stored.
CREDENTIALS = frozenset({"writeKey", "write_key"})


class Refused(Exception):
    """A whole request refused before any message is looked at."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


def basic_user(request: Request) -> str | None:
    """The HTTP Basic user name (the write key), or None when there is no Basic header."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        user, _, _ = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return ""  # a Basic header that says nothing readable is a wrong key, not a missing one
    return user


def key_matches(key: str, keys: list[str]) -> bool:
    """Constant time over every configured key, so timing tells nothing of which is close."""
    given = key.encode()
    found = False
    for known in keys:
        found |= hmac.compare_digest(given, known.encode())
    return found and bool(key)


def without_credentials(message: Any) -> Any:
    if isinstance(message, dict) and not CREDENTIALS.isdisjoint(message):
        return {k: v for k, v in message.items() if k not in CREDENTIALS}
    return message


def _unexplained_rejection(message: Any) -> bool:
    if not isinstance(message, dict) or message.get("type") != "track":
        return False
    if message.get("event") != "Lead Rejected":
        return False
    properties = message.get("properties")
    return not isinstance(properties, dict) or properties.get("reason") in (None, "")


class Ingest:
    """Reading, authorising and storing requests; shared by the tracking and webhook routes."""

    def __init__(self, daemon: IngestHost) -> None:
        self.daemon = daemon
        self.limits = daemon.settings.ingest
        rate = self.limits.rate_limit
        self.rate = RateLimiter(rate.per_second, rate.burst, time.monotonic)

    async def read(self, request: Request) -> tuple[bytes, Any]:
        """The raw body as received and its JSON. Raises Refused (400, 413)."""
        most = self.limits.max_batch_bytes
        too_large = Refused(413, f"request is larger than {most} bytes")
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise Refused(400, "Content-Length is not a number")
            if int(length) > most:
                raise too_large  # refused before a byte of the body is read
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > most:
                raise too_large  # a chunked body: stop reading at the limit
            chunks.append(chunk)
        raw = body = b"".join(chunks)
        if request.headers.get("content-encoding", "").lower() == "gzip":
            # Inflate no further than the limit: a small body must not expand without bound.
            inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            try:
                body = inflate.decompress(raw, most + 1)
            except zlib.error:
                raise Refused(400, "body is not valid gzip") from None
            if len(body) > most or inflate.unconsumed_tail:
                raise too_large
            if not inflate.eof:
                raise Refused(400, "body is not valid gzip")
        if len(body) > most:
            raise too_large
        try:
            return raw, orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            if "depth limit" in str(exc):  # no message can be read, so none can be kept
                raise Refused(400, "body is nested deeper than 1,024 levels") from None
            raise Refused(400, f"body is not valid JSON: {exc}") from None

    def authorize(self, request: Request, payload: Any) -> None:
        """The write key from HTTP Basic, else the body's `writeKey`, and its rate limit.
        Raises Refused (401, 429)."""
        key = basic_user(request)
        if key is None and isinstance(payload, dict) and isinstance(payload.get("writeKey"), str):
            key = payload["writeKey"]
        if key is None or not key_matches(key, self.daemon.write_keys()):
            raise Refused(401, "missing or wrong write key (HTTP Basic user name or writeKey)")
        wait = self.rate.take(key)  # only known keys get a bucket
        if wait:
            raise Refused(429, "too many requests for this write key", retry_after=wait)

    def problem(self, message: Any, expected: str | None) -> dict[str, str] | None:
        """What is wrong with a message before the service looks at it, if anything."""
        if expected is not None and isinstance(message, dict) and message.get("type") != expected:
            said = message.get("type")
            return {
                "field": "type",
                "message": f"this route takes {expected!r} messages; the body says {said!r}",
            }
        if self.limits.require_reject_reason and _unexplained_rejection(message):
            return {
                "field": "properties.reason",
                "message": "a Lead Rejected needs a reason (ingest.require_reject_reason)",
            }
        try:
            size = len(orjson.dumps(message))
        except orjson.JSONEncodeError:  # nested deeper than orjson writes (255 levels)
            return {"field": "message", "message": "nested too deeply (at most 255 levels)"}
        if size > self.limits.max_message_bytes:
            return {
                "field": "message",
                "message": f"larger than {self.limits.max_message_bytes} bytes",
            }
        return None

    async def store(self, messages: list[Any], expected: str | None = None) -> Response:
        """Store the valid messages (credentials removed); answer 200, or 400 with errors."""
        errors: list[dict[str, Any]] = []
        kept: list[Any] = []
        indices: list[int] = []
        for index, message in enumerate(messages):
            clean = without_credentials(message)
            problem = self.problem(clean, expected)
            if problem is None:
                kept.append(clean)
                indices.append(index)
            else:
                errors.append({"index": index, **problem})
        if kept:
            errors += await self.daemon.ingest(kept, indices)
        if errors:
            errors.sort(key=lambda e: e["index"])
            return JSONResponse({"success": False, "errors": errors}, status_code=400)
        return JSONResponse({"success": True})

    async def handle(
        self, request: Request, unpack: Callable[[Any], list[Any]], expected: str | None
    ) -> Response:
        try:
            early = basic_user(request) is not None
            if early:  # key and rate limit checked before the body is read
                self.authorize(request, None)
            _, payload = await self.read(request)
            if not early:
                self.authorize(request, payload)
            messages = unpack(payload)
        except Refused as exc:
            return refusal(exc)
        return await self.store(messages, expected)


def refusal(exc: Refused) -> JSONResponse:
    headers = {} if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
    return JSONResponse(
        {"success": False, "message": exc.message}, status_code=exc.status, headers=headers
    )


def batch_messages(payload: Any) -> list[Any]:
    if not isinstance(payload, dict) or not isinstance(payload.get("batch"), list):
        raise Refused(400, 'body must be {"batch": [...]}')
    context = payload.get("context")
    messages: list[Any] = payload["batch"]
    if isinstance(context, dict):  # batch-level context applies to every message
        messages = [
            {**m, "context": {**context, **m.get("context", {})}}
            if isinstance(m, dict) and isinstance(m.get("context", {}), dict)
            else m
            for m in messages
        ]
    return messages


def one_message(kind: str) -> Callable[[Any], list[Any]]:
    def unpack(payload: Any) -> list[Any]:
        if isinstance(payload, dict) and "type" not in payload:
            payload = {**payload, "type": kind}
        return [payload]

    return unpack


def add_tracking_routes(app: FastAPI, ingest: Ingest) -> list[str]:
    """Register the batch and per-type routes, long and short names; return their paths."""
    paths: list[str] = []

    def route(path: str, unpack: Callable[[Any], list[Any]], expected: str | None) -> None:
        # A closure, not a default argument: FastAPI would read one as a query parameter.
        async def post(request: Request) -> Response:
            return await ingest.handle(request, unpack, expected)

        app.add_api_route(path, post, methods=["POST"], name=f"post {path}")
        paths.append(path)

    for path in BATCH_PATHS:
        route(path, batch_messages, None)
    for kind in TYPES:
        route(f"/v1/{kind}", one_message(kind), kind)
    for short, kind in SHORT.items():
        route(f"/v1/{short}", one_message(kind), kind)
    return paths
