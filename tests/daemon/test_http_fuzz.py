"""Generated hostile requests at the HTTP door: never a 500, a traceback or a hang; every
refused message named by index and field; the valid messages beside a bad one stored.

Most cases drive the real ASGI app in-process (the daemon's own `create_app` over a real
SQLite store, through Starlette's TestClient); a few hundred go through a real
`leadrules run` in a subprocess. Counts are printed (`-s`) and written to
`build/fuzz/http.json`; LEADRULES_FUZZ_HTTP_CASES and LEADRULES_FUZZ_HTTP_CLI_CASES change them.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import sqlite3
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from leadrules.engine.daemon.api import create_app
from leadrules.engine.daemon.runtime import Daemon, DaemonOptions
from tests.daemon.harness import KEY
from tests.daemon.ingest_daemon import ingest_daemon
from tests.hostile import GZIP_BOMB, RAW_BODIES, body_of, hostile_message, valid_message

ROOT = Path(__file__).resolve().parents[2]
CASES = int(os.environ.get("LEADRULES_FUZZ_HTTP_CASES", "3000"))
CLI_CASES = int(os.environ.get("LEADRULES_FUZZ_HTTP_CLI_CASES", "300"))
# Hypothesis prints a failing example; values nested 1,100 levels need the room.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))
ROUTES = ["/v1/batch", "/v1/b", "/v1/track", "/v1/t", "/v1/page", "/v1/identify", "/v1/webhook"]
CONTENT_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded", ""]


def _report(name: str, counts: dict[str, Any]) -> None:
    print(f"\nhttp fuzz ({name}): {json.dumps(counts)}")
    out = ROOT / "build" / "fuzz"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(counts) + "\n")


def _stored_ids(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute("SELECT message_id FROM event")}


def depth(value: Any) -> int:
    """How deeply a value nests (iterative: the values here nest past the recursion limit)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack += [(v, level + 1) for v in item.values()]
        elif isinstance(item, list):
            stack += [(v, level + 1) for v in item]
    return deepest


def _check_answer(response: httpx.Response, messages: list[Any], bad: int) -> bool:
    """The promises for one request of known messages, one of them (`bad`) hostile; whether
    the request's valid messages had to be kept."""
    assert response.status_code in (200, 400, 413), (response.status_code, response.text)
    body = response.json()
    if response.status_code == 400 and "errors" not in body:
        # Refused whole only when the body cannot be read: nested past the parser's limit.
        assert "nested deeper" in body["message"], body
        assert depth(messages[bad]) > 1000
        return False
    for error in body.get("errors", []):
        assert isinstance(error["index"], int) and error["field"] and error["message"]
        assert error["index"] == bad, (error, messages)  # no valid message refused
    return response.status_code != 413


@pytest.fixture(scope="module")
def app_daemon(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("http-fuzz")
    config = root / "config"
    config.mkdir()
    (config / "leadrules.yaml").write_text(
        f"database_url: sqlite:///{root}/fuzz.db\n"
        "ingest:\n"
        '  write_keys: ["${LEADRULES_WRITE_KEY}"]\n'
        "  rate_limit: {per_second: 0}\n"
    )
    (config / "channels.yaml").write_text(
        "channels:\n"
        + "".join(
            f'  {name}: {{adapter: webhook, url: "http://127.0.0.1:9/"}}\n'
            for name in ("sales", "sales-managers", "crm", "email", "digest", "log")
        )
    )
    os.environ["LEADRULES_WRITE_KEY"] = KEY
    daemon = Daemon(DaemonOptions(rules_dir=ROOT / "rules", config_dir=config))
    yield daemon, root / "fuzz.db"
    daemon.store.dispose()


def test_generated_requests_in_process(
    app_daemon: tuple[Daemon, Path], caplog: pytest.LogCaptureFixture
) -> None:
    daemon, db = app_daemon
    client = TestClient(create_app(daemon), raise_server_exceptions=False)
    counts = {"requests": 0, "messages": 0, "ok": 0, "refused_400": 0, "refused_413": 0}
    sent_valid: set[str] = set()

    @settings(
        max_examples=CASES,
        deadline=timedelta(seconds=10),
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        route=st.sampled_from(ROUTES),
        valid_count=st.integers(0, 4),
        bad_at=st.integers(0, 4),
        bad=hostile_message("http"),
        gzipped=st.booleans(),
        content_type=st.sampled_from(CONTENT_TYPES),
        number=st.integers(0, 10**9),
    )
    def case(
        route: str,
        valid_count: int,
        bad_at: int,
        bad: Any,
        gzipped: bool,
        content_type: str,
        number: int,
    ) -> None:
        single = route not in ("/v1/batch", "/v1/b", "/v1/webhook")
        valid = [valid_message(f"h{number}", i) for i in range(0 if single else valid_count)]
        at = min(bad_at, len(valid))
        messages = [*valid[:at], bad, *valid[at:]]
        payload: Any = messages[0] if single else {"batch": messages}
        if route == "/v1/webhook":
            payload = messages
        body = body_of(payload)
        headers = {"content-type": content_type} if content_type else {}
        if gzipped:
            body = gzip.compress(body)
            headers["content-encoding"] = "gzip"
        response = client.post(route, content=body, headers=headers, auth=(KEY, ""))
        counts["requests"] += 1
        counts["messages"] += len(messages)
        key = {200: "ok", 400: "refused_400", 413: "refused_413"}.get(response.status_code)
        if key:
            counts[key] += 1
        if _check_answer(response, messages, at):
            sent_valid.update(m["messageId"] for m in valid)

    @settings(max_examples=CASES // 3, deadline=timedelta(seconds=10), database=None)
    @given(body=RAW_BODIES, route=st.sampled_from(ROUTES), gzipped=st.booleans())
    def raw_case(body: bytes, route: str, gzipped: bool) -> None:
        headers = {"content-type": "application/json"}
        if gzipped:
            body, headers["content-encoding"] = gzip.compress(body), "gzip"
        response = client.post(route, content=body, headers=headers, auth=(KEY, ""))
        counts["requests"] += 1
        assert response.status_code in (200, 400, 413), (response.status_code, response.text)
        assert response.json()["success"] in (True, False)

    started = time.monotonic()
    with caplog.at_level(logging.ERROR):
        case()
        raw_case()
        # Everything stored is evaluated; nothing raised while doing so (nothing set aside).
        daemon.service.process_pending(limit=10**9)
    counts["seconds"] = round(time.monotonic() - started, 1)
    missing = sent_valid - _stored_ids(db)
    counts["valid_sent"], counts["valid_lost"] = len(sent_valid), len(missing)
    health = daemon.health()
    counts["set_aside"] = health["set_aside"]
    _report("http", counts)
    assert not missing, sorted(missing)[:5]
    assert health["set_aside"] == 0
    assert not [r for r in caplog.records if r.exc_info], caplog.text[:2000]
    assert counts["requests"] >= CASES  # hypothesis ran the cases, not a handful


def test_gzip_bomb_and_size_limits_in_process(app_daemon: tuple[Daemon, Path]) -> None:
    daemon, _ = app_daemon
    client = TestClient(create_app(daemon), raise_server_exceptions=False)
    started = time.monotonic()
    response = client.post(
        "/v1/batch",
        content=GZIP_BOMB,
        headers={"content-encoding": "gzip", "content-type": "text/plain"},
        auth=(KEY, ""),
    )
    assert response.status_code == 413, response.text
    assert time.monotonic() - started < 5  # inflated no further than the limit
    big = b'{"batch": [' + b'{"a": 1},' * 100_000 + b"{}]}"
    assert client.post("/v1/batch", content=big, auth=(KEY, "")).status_code == 413

    def chunks() -> Any:  # no Content-Length: chunked, refused once past the limit
        for _ in range(2000):
            yield b" " * 1024

    response = client.post("/v1/batch", content=chunks(), auth=(KEY, ""))
    assert response.status_code == 413


def test_generated_requests_at_a_real_daemon(tmp_path: Path) -> None:
    """The same kind of cases through `leadrules run` over HTTP: no 500, valid ones kept,
    no traceback in the daemon's log."""
    counts: dict[str, Any] = {"requests": 0, "messages": 0}
    sent: set[str] = set()
    started = time.monotonic()
    with ingest_daemon(tmp_path, {"rate_limit": {"per_second": 0}}) as (daemon, _):
        client = httpx.Client(base_url=daemon.url, auth=(KEY, ""), timeout=30)

        @settings(max_examples=CLI_CASES, deadline=None, database=None)
        @given(bad=hostile_message("cli"), valid_count=st.integers(1, 3), n=st.integers(0, 10**9))
        def case(bad: Any, valid_count: int, n: int) -> None:
            valid = [valid_message(f"c{n}", i) for i in range(valid_count)]
            messages = [bad, *valid]
            response = client.post(
                "/v1/batch",
                content=body_of({"batch": messages}),
                headers={"content-type": "text/plain"},
            )
            counts["requests"] += 1
            counts["messages"] += len(messages)
            if _check_answer(response, messages, 0):
                sent.update(m["messageId"] for m in valid)

        case()
        for body in (GZIP_BOMB, b"[" * 1100, b'{"batch": [NaN]}'):
            headers = {"content-encoding": "gzip"} if body is GZIP_BOMB else {}
            assert client.post("/v1/batch", content=body, headers=headers).status_code in (
                400,
                413,
            )
        daemon.settle(timeout=120)
        assert daemon.health()["set_aside"] == 0
        with sqlite3.connect(tmp_path / "leadrules.db") as conn:
            stored = {r[0] for r in conn.execute("SELECT message_id FROM event")}
    log = (tmp_path / "daemon.log").read_text()
    counts["valid_lost"] = len(sent - stored)
    counts["seconds"] = round(time.monotonic() - started, 1)
    _report("http-cli", counts)
    assert sent <= stored
    assert "Traceback" not in log, log[:3000]
    assert counts["requests"] >= CLI_CASES
