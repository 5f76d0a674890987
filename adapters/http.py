"""What the HTTP adapters share: one client, and HTTP outcomes mapped to DeliveryError."""

from __future__ import annotations

import httpx

from leadrules.engine.errors import DeliveryError


def post(
    client: httpx.Client, url: str, *, content: bytes, headers: dict[str, str], what: str
) -> httpx.Response:
    """POST and map the outcome: 2xx is delivered; 429, 5xx and network failures are
    retryable; any other status is final."""
    try:
        response = client.post(url, content=content, headers=headers)
    except httpx.TimeoutException as exc:
        raise DeliveryError(f"{what}: timed out ({exc})", retryable=True) from exc
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{what}: {type(exc).__name__}: {exc}", retryable=True) from exc
    if response.is_success:
        return response
    detail = f"{what}: HTTP {response.status_code} {response.text[:200]!r}"
    retryable = response.status_code == 429 or response.status_code >= 500
    raise DeliveryError(detail, retryable=retryable)
