"""Requests per write key: a token bucket (`rate_limit`), and `429` with `Retry-After` and
CORS headers from a real daemon past it."""

from __future__ import annotations

from pathlib import Path

import httpx

from leadrules.engine.daemon.rate_limit import RateLimiter
from leadrules.engine.language.settings import IngestSettings
from tests.daemon.harness import KEY
from tests.daemon.ingest_daemon import ingest_daemon, stored_messages


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate() -> None:
    clock = FakeTime()
    limiter = RateLimiter(per_second=2, burst=3, now=clock)
    assert [limiter.take("k") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("k") == 1  # empty: half a second to the next token, rounded up
    clock.now += 0.5
    assert limiter.take("k") == 0
    assert limiter.take("k") >= 1
    clock.now += 60  # refills up to the burst, not beyond
    assert [limiter.take("k") for _ in range(4)] == [0, 0, 0, 1]


def test_each_key_has_its_own_bucket() -> None:
    clock = FakeTime()
    limiter = RateLimiter(per_second=0.1, burst=1, now=clock)
    assert limiter.take("a") == 0
    assert limiter.take("a") == 10  # ten seconds to the next token
    assert limiter.take("b") == 0


def test_zero_turns_it_off_and_the_default_is_generous() -> None:
    limiter = RateLimiter(per_second=0, burst=1, now=FakeTime())
    assert all(limiter.take("k") == 0 for _ in range(10_000))
    default = IngestSettings().rate_limit
    assert default.per_second >= 100 and default.burst >= 100


def test_the_daemon_answers_429_with_retry_after_and_cors(tmp_path: Path) -> None:
    limits = {"rate_limit": {"per_second": 0.2, "burst": 3}, "cors_origins": ["https://site.test"]}
    with ingest_daemon(tmp_path, limits) as (daemon, _):
        event = {"type": "track", "userId": "rl", "event": "Demo Requested"}
        origin = {"origin": "https://site.test"}
        answers = [daemon.post("/v1/track", event, headers=origin) for _ in range(5)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
        refused = answers[3]
        assert 1 <= int(refused.headers["retry-after"]) <= 5
        assert refused.headers["access-control-allow-origin"] == "https://site.test"
        assert refused.json() == {
            "success": False,
            "message": "too many requests for this write key",
        }
        # A wrong key is refused for what it is, and takes nothing from the real key's bucket.
        wrong = httpx.post(f"{daemon.url}/v1/track", json=event, auth=("nope", ""), timeout=10)
        assert wrong.status_code == 401
        # The key in the body (sendBeacon) is limited the same way.
        beacon = httpx.post(f"{daemon.url}/v1/t", json={**event, "writeKey": KEY}, timeout=10)
        assert beacon.status_code == 429
        # Only three were stored.
        assert daemon.settle()["pending_events"] == 0
        assert len([m for m in stored_messages(daemon) if m.get("userId") == "rl"]) == 3
