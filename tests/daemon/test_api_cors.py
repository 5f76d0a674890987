"""CORS on every ingest route, so a website's own tracker can post to the daemon: preflights
answered 204, and every answer readable by the page (Access-Control-Allow-Origin)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from leadrules.engine.daemon.cors import Cors
from tests.daemon.harness import KEY, Daemon
from tests.daemon.ingest_daemon import ingest_daemon

pytestmark = pytest.mark.integration

SITE = "http://shop.example:8000"
INGEST_PATHS = [
    "/v1/batch",
    "/v1/b",
    *(f"/v1/{kind}" for kind in ("track", "page", "identify", "group", "alias", "screen")),
    *(f"/v1/{short}" for short in "tpigas"),
    "/v1/webhook",
]
TRACKER_HEADERS = "authorization,content-type,anonymousid,sentat,x-retry-count"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with ingest_daemon(tmp_path_factory.mktemp("cors-any")) as (d, _):
        yield d


@pytest.fixture(scope="module")
def restricted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("cors-list")
    with ingest_daemon(root, {"cors_origins": [SITE]}) as (d, _):
        yield d


def preflight(url: str, origin: str = SITE, **headers: str) -> httpx.Response:
    return httpx.options(
        url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": TRACKER_HEADERS,
            **headers,
        },
    )


@pytest.mark.parametrize("path", INGEST_PATHS)
def test_preflight_is_answered_204_on_every_ingest_route(daemon: Daemon, path: str) -> None:
    answer = preflight(daemon.url + path)
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert answer.headers["access-control-allow-headers"] == TRACKER_HEADERS
    assert int(answer.headers["access-control-max-age"]) > 0


def test_preflight_without_requested_headers_allows_what_trackers_send(daemon: Daemon) -> None:
    answer = httpx.options(
        daemon.url + "/v1/t", headers={"Origin": SITE, "Access-Control-Request-Method": "POST"}
    )
    allowed = {h.strip() for h in answer.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "anonymousid", "sentat", "x-retry-count"} <= allowed


def test_every_answer_carries_the_allowed_origin(daemon: Daemon) -> None:
    url, origin = daemon.url, {"Origin": SITE}
    answers = {
        200: httpx.post(
            f"{url}/v1/track",
            json={"userId": "c1", "event": "Ping"},
            auth=(KEY, ""),
            headers=origin,
        ),
        400: httpx.post(f"{url}/v1/track", json={"userId": "c1"}, auth=(KEY, ""), headers=origin),
        401: httpx.post(f"{url}/v1/track", json={"userId": "c1", "event": "Ping"}, headers=origin),
        413: httpx.post(
            f"{url}/v1/batch",
            json={"batch": [], "pad": "x" * 600_000},
            auth=(KEY, ""),
            headers=origin,
        ),
    }
    for status, answer in answers.items():
        assert answer.status_code == status, answer.text
        assert answer.headers["access-control-allow-origin"] == "*", status


def test_private_network_preflight_is_allowed(daemon: Daemon) -> None:
    """Chromium asks this before a public page may reach a daemon on a private address."""
    answer = preflight(daemon.url + "/v1/p", **{"Access-Control-Request-Private-Network": "true"})
    assert answer.headers["access-control-allow-private-network"] == "true"


def test_health_and_metrics_are_not_opened_to_other_origins(daemon: Daemon) -> None:
    answer = httpx.get(daemon.url + "/health", headers={"Origin": SITE})
    assert "access-control-allow-origin" not in answer.headers


def test_a_list_of_origins_names_the_one_allowed_and_varies_on_origin(restricted: Daemon) -> None:
    allowed = preflight(restricted.url + "/v1/p")
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == SITE
    assert allowed.headers["vary"] == "Origin"
    stored = httpx.post(
        f"{restricted.url}/v1/p",
        content=b'{"userId": "c2", "properties": {"path": "/pricing"}}',
        headers={"Origin": SITE, "Content-Type": "text/plain"},
        auth=(KEY, ""),
    )
    assert stored.status_code == 200
    assert stored.headers["access-control-allow-origin"] == SITE
    assert stored.headers["vary"] == "Origin"


def test_an_origin_not_in_the_list_is_refused(restricted: Daemon) -> None:
    refused = preflight(restricted.url + "/v1/p", origin="http://elsewhere.example")
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers
    assert "ingest.cors_origins" in refused.json()["message"]
    answer = httpx.post(
        f"{restricted.url}/v1/track",
        json={"userId": "c3", "event": "Ping"},
        headers={"Origin": "http://elsewhere.example"},
        auth=(KEY, ""),
    )
    assert "access-control-allow-origin" not in answer.headers
    assert answer.headers["vary"] == "Origin"


def test_statuses_the_daemon_sheds_load_with_are_readable_too() -> None:
    """429 and 503 come from layers under the routes; the middleware marks them all."""

    async def shedding(scope: Any, receive: Any, send: Any) -> None:
        status = int(scope["path"].rsplit("/", 1)[1])
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def run() -> None:
        app = Cors(shedding, origins=["*"], paths=["/v1/429", "/v1/503"])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://daemon") as client:
            for status in (429, 503):
                answer = await client.post(f"/v1/{status}", headers={"Origin": SITE})
                assert answer.status_code == status
                assert answer.headers["access-control-allow-origin"] == "*"
            other = await client.post("/v1/200", headers={"Origin": SITE})
            assert "access-control-allow-origin" not in other.headers

    asyncio.run(run())
