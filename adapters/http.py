"""What the HTTP adapters share: one client, and HTTP outcomes mapped to DeliveryError.

Error texts never carry the URL (a Slack webhook URL is a credential) nor request headers;
a `Retry-After` on 429 or 503 is passed to the dispatcher, which waits at least that long.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

import httpx

from leadrules.engine.errors import DeliveryError

MAX_RETRY_AFTER = 24 * 3600.0  # a receiver cannot park a message for longer than a day


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date; None when
    absent or unreadable (the dispatcher's own backoff applies then)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    wait = moment.timestamp() - (time.time() if now is None else now)
    return min(max(wait, 0.0), MAX_RETRY_AFTER)


def post(
    client: httpx.Client, url: str, *, content: bytes, headers: dict[str, str], what: str
) -> httpx.Response:
    """POST and map the outcome: 2xx is delivered; 408, 429, 5xx and network failures are
    retryable; any other status is final."""
    try:
        response = client.post(url, content=content, headers=headers)
    except httpx.TimeoutException as exc:
        raise DeliveryError(f"{what}: timed out ({type(exc).__name__})", retryable=True) from None
    except httpx.HTTPError as exc:
        # A few httpx messages quote the URL, which may be a credential: cut it out.
        text = str(exc).replace(url, "<url>")
        raise DeliveryError(f"{what}: {type(exc).__name__}: {text}", retryable=True) from None
    if response.is_success:
        return response
    status = response.status_code
    detail = f"{what}: HTTP {status} {response.text[:200]!r}"
    retryable = status in (408, 429) or status >= 500
    wait = retry_after(response.headers.get("retry-after")) if retryable else None
    if wait is not None:
        detail += f" (Retry-After {wait:g}s)"
    raise DeliveryError(detail, retryable=retryable, retry_after=wait)
