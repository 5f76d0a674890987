"""Requests per write key: a token bucket each, refilled continuously.

A write key is public in a browser, so one page (or a copied key) must not be able to fill
the event log. Each key may post `burst` requests at once and `per_second` on average; past
that the request is answered `429` with `Retry-After` (whole seconds until a token is
back), before its body is read. Limits are per key, in memory, per daemon process.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float  # when `tokens` was last brought up to date, seconds


class RateLimiter:
    """`take(key)` -> 0 when allowed, else the seconds to wait (>= 1) before trying again."""

    def __init__(self, per_second: float, burst: int, now: Callable[[], float]) -> None:
        self.rate = per_second
        self.burst = max(1, burst)
        self.now = now
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> int:
        if self.rate <= 0:
            return 0  # no limit configured
        with self._lock:
            now = self.now()
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            elapsed = max(0.0, now - bucket.at)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0
            return max(1, math.ceil((1.0 - bucket.tokens) / self.rate))
