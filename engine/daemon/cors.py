"""CORS for the ingest routes, so that a tracker on a website's own pages can post to them.

Browser trackers (analytics.js, RudderStack's SDK) send an `Authorization` header, so the
browser first asks with a preflight `OPTIONS`; without a `204` that allows the method and
headers, it never sends the event. Every answer of an ingest route, errors included, carries
`Access-Control-Allow-Origin`, or the tracker could not read why it was refused.

`["*"]` (the default) allows every origin, as Segment's own API does: a browser write key is
public by design. A list of origins restricts it; the answer then names the one origin and
says `Vary: Origin`, so that a cache does not hand one site's answer to another.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_AGE = "7200"  # seconds; Chromium caps a preflight cache at two hours
# Allowed when the preflight lists none: what the trackers are seen to send.
DEFAULT_HEADERS = (
    "authorization, content-type, content-encoding, x-retry-count, anonymousid, sentat, "
    "rsa-request-id, rsa-source-id, x-signature"
)


class Cors:
    """Pure ASGI middleware for the routes in `paths`; other routes pass through untouched."""

    def __init__(self, app: App, *, origins: Collection[str], paths: Collection[str]) -> None:
        self.app = app
        self.any_origin = "*" in origins
        self.origins = frozenset(origins)
        self.paths = frozenset(paths)

    def allowed(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        """The `Access-Control-Allow-Origin` (and `Vary`) headers for a request's origin."""
        if self.any_origin:
            return [(b"access-control-allow-origin", b"*")]
        vary = (b"vary", b"Origin")
        if origin is not None and origin in self.origins:
            return [(b"access-control-allow-origin", origin.encode("latin-1")), vary]
        return [vary]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
        raw_origin = headers.get("origin")
        origin = raw_origin.decode("latin-1") if raw_origin is not None else None
        allow = self.allowed(origin)
        if scope["method"] == "OPTIONS":
            await self.preflight(send, headers, allow)
            return

        async def with_origin(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *allow]
            await send(message)

        await self.app(scope, receive, with_origin)

    async def preflight(
        self, send: Send, headers: dict[str, bytes], allow: list[tuple[bytes, bytes]]
    ) -> None:
        if not any(name == b"access-control-allow-origin" for name, _ in allow):
            body = b'{"success":false,"message":"origin not allowed (ingest.cors_origins)"}'
            await _answer(send, 403, [(b"content-type", b"application/json"), *allow], body)
            return
        requested = headers.get("access-control-request-headers")
        answer = [
            *allow,
            (b"access-control-allow-methods", b"POST, OPTIONS"),
            (b"access-control-allow-headers", requested or DEFAULT_HEADERS.encode()),
            (b"access-control-max-age", MAX_AGE.encode()),
        ]
        if headers.get("access-control-request-private-network") == b"true":
            # Chromium asks this before a public page may reach a daemon on a private address.
            answer.append((b"access-control-allow-private-network", b"true"))
        await _answer(send, 204, answer, b"")


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    length = (b"content-length", str(len(body)).encode())
    await send({"type": "http.response.start", "status": status, "headers": [*headers, length]})
    await send({"type": "http.response.body", "body": body})
