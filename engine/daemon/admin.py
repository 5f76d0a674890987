"""Admin tokens: `/metrics` behind `ingest.metrics_token` when one is configured.

The dashboard (`ui`) has its own `LEADRULES_ADMIN_TOKEN`. `/metrics` is open by default,
since the daemon listens on 127.0.0.1 and Prometheus scrapes it there; a daemon exposed
further sets `ingest.metrics_token: "${VAR}"`, and a scrape must then send the token as
`Authorization: Bearer ...` (Prometheus' `authorization:` setting) or as the HTTP Basic
password. Tokens are compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from starlette.requests import Request


def token_of(request: Request) -> str | None:
    """The token of a Bearer header, or the password of a Basic one."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value, validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


def token_ok(request: Request, expected: str) -> bool:
    given = token_of(request)
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
