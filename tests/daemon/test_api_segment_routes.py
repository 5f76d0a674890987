"""Segment's routes and bodies as analytics.js sends them: the short names, `/v1/b`, JSON in a
`text/plain` body, the write key in the body when there is no header, and no write key in
what is stored."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from leadrules.engine.daemon.ingest_http import key_matches
from tests.daemon.harness import KEY, Daemon
from tests.daemon.ingest_daemon import exported, ingest_daemon, stored_messages

pytestmark = pytest.mark.integration

TEXT = {"Content-Type": "text/plain"}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with ingest_daemon(tmp_path_factory.mktemp("routes")) as (d, _):
        yield d


def post(daemon: Daemon, path: str, body: Any, **kw: Any) -> httpx.Response:
    """POST as analytics.js does: JSON text in a text/plain body."""
    return httpx.post(f"{daemon.url}{path}", content=json.dumps(body), headers=TEXT, **kw)


def stored(daemon: Daemon, prospect: str) -> list[dict[str, Any]]:
    return [
        m for m in stored_messages(daemon) if prospect in (m.get("userId"), m.get("anonymousId"))
    ]


def test_short_routes_and_the_batch_route_take_text_plain(daemon: Daemon) -> None:
    one = {
        "/v1/t": {"event": "Ping"},
        "/v1/p": {"properties": {"path": "/pricing"}},
        "/v1/i": {"traits": {"name": "Sam"}},
        "/v1/g": {"groupId": "acme"},
        "/v1/a": {"previousId": "anon-1"},
        "/v1/s": {"name": "Home"},
    }
    for path, body in one.items():
        answer = post(daemon, path, {**body, "userId": "short-1"}, auth=(KEY, ""))
        assert answer.status_code == 200, (path, answer.text)
        assert answer.json() == {"success": True}
    batch = {
        "batch": [
            {"type": "track", "userId": "short-1", "event": "Batched", "writeKey": KEY},
            {"type": "page", "userId": "short-1", "name": "Docs", "writeKey": KEY},
        ],
        "sentAt": "2026-11-30T10:00:00Z",
        "writeKey": KEY,
    }
    assert post(daemon, "/v1/b", batch).status_code == 200
    kinds = sorted(m["type"] for m in stored(daemon, "short-1"))
    assert kinds == sorted(
        ["track", "page", "identify", "group", "alias", "screen"] * 1 + ["track", "page"]
    )


def test_the_write_key_comes_from_basic_else_from_the_body(daemon: Daemon) -> None:
    message = {"userId": "key-1", "event": "Ping", "writeKey": KEY}
    assert post(daemon, "/v1/t", message).status_code == 200
    assert post(daemon, "/v1/t", {**message, "writeKey": "wrong"}).status_code == 401
    assert (
        post(daemon, "/v1/t", {k: v for k, v in message.items() if k != "writeKey"}).status_code
        == 401
    )
    # A Basic header is the key even when the body says another one (Basic wins).
    assert post(daemon, "/v1/t", message, auth=("wrong", "")).status_code == 401
    garbled = {"Authorization": "Basic %%%not-base64", **TEXT}
    answer = httpx.post(f"{daemon.url}/v1/t", content=json.dumps(message), headers=garbled)
    assert answer.status_code == 401
    assert "write key" in answer.json()["message"]


def test_no_write_key_is_stored_exported_or_in_the_database(daemon: Daemon) -> None:
    batch = {
        "batch": [{"type": "track", "userId": "secret-1", "event": "Ping", "writeKey": KEY}],
        "writeKey": KEY,
    }
    assert post(daemon, "/v1/b", batch).status_code == 200
    assert (
        post(daemon, "/v1/p", {"userId": "secret-1", "writeKey": KEY, "name": "Home"}).status_code
        == 200
    )
    log = exported(daemon)
    messages = [m for m in log if m.get("userId") == "secret-1"]
    assert len(messages) == 2
    assert all("writeKey" not in m for m in messages)
    assert KEY not in json.dumps(log)
    database = daemon.root / "leadrules.db"
    assert KEY.encode() not in database.read_bytes()


def test_a_per_type_route_refuses_a_body_of_another_type(daemon: Daemon) -> None:
    answer = post(
        daemon, "/v1/track", {"type": "page", "userId": "type-1", "name": "X"}, auth=(KEY, "")
    )
    assert answer.status_code == 400
    [error] = answer.json()["errors"]
    assert (error["index"], error["field"]) == (0, "type")
    assert "'track'" in error["message"] and "'page'" in error["message"]
    short = post(
        daemon, "/v1/i", {"type": "track", "userId": "type-1", "event": "X"}, auth=(KEY, "")
    )
    assert short.status_code == 400
    assert stored(daemon, "type-1") == []


def test_a_kind_query_parameter_changes_nothing(daemon: Daemon) -> None:
    """Each route's type is fixed by its path; no query parameter can choose another."""
    answer = post(
        daemon, "/v1/track?kind=page", {"userId": "kind-1", "event": "Ping"}, auth=(KEY, "")
    )
    assert answer.status_code == 200
    assert [m["type"] for m in stored(daemon, "kind-1")] == ["track"]
    refused = post(
        daemon,
        "/v1/page?kind=track",
        {"userId": "kind-2", "event": "Ping", "type": "track"},
        auth=(KEY, ""),
    )
    assert refused.status_code == 400


def test_invalid_messages_in_a_short_batch_get_one_error_each(daemon: Daemon) -> None:
    body = {
        "batch": [
            {"type": "track", "userId": "err-1", "event": "Ok"},
            {"type": "track", "userId": "err-1"},
            {"type": "page", "userId": "err-1", "properties": {"blob": "x" * 40_000}},
            {"type": "launch", "userId": "err-1"},
        ],
        "writeKey": KEY,
    }
    answer = post(daemon, "/v1/b", body)
    assert answer.status_code == 400
    assert [(e["index"], e["field"]) for e in answer.json()["errors"]] == [
        (1, "event"),
        (2, "message"),
        (3, "type"),
    ]
    assert [m.get("event") for m in stored(daemon, "err-1")] == ["Ok"]


def test_gzip_text_plain_and_a_body_that_is_not_json(daemon: Daemon) -> None:
    body = gzip.compress(json.dumps({"userId": "gz-1", "event": "Ping", "writeKey": KEY}).encode())
    answer = httpx.post(
        f"{daemon.url}/v1/t", content=body, headers={**TEXT, "Content-Encoding": "gzip"}
    )
    assert answer.status_code == 200
    gzipped = {**TEXT, "Content-Encoding": "gzip"}
    bomb = gzip.compress(b'{"batch": [], "pad": "' + b"x" * 50_000_000 + b'"}')
    too_large = httpx.post(f"{daemon.url}/v1/b", content=bomb, headers=gzipped, auth=(KEY, ""))
    assert too_large.status_code == 413
    cut = httpx.post(f"{daemon.url}/v1/t", content=body[:-6], headers=gzipped, auth=(KEY, ""))
    assert cut.status_code == 400
    assert "gzip" in cut.json()["message"]
    bad = httpx.post(f"{daemon.url}/v1/t", content=b"{not json", headers=TEXT, auth=(KEY, ""))
    assert bad.status_code == 400
    assert "not valid JSON" in bad.json()["message"]


def test_write_keys_match_exactly_against_every_configured_key() -> None:
    keys = ["first-key", "second-key"]
    assert key_matches("second-key", keys)
    assert key_matches("first-key", keys)
    assert not key_matches("second-ke", keys)
    assert not key_matches("second-key ", keys)
    assert not key_matches("", ["", "x"])
    assert not key_matches("x", [])


def test_basic_header_password_is_ignored(daemon: Daemon) -> None:
    token = base64.b64encode(f"{KEY}:anything".encode()).decode()
    answer = httpx.post(
        f"{daemon.url}/v1/t",
        content=json.dumps({"userId": "pw-1", "event": "Ping"}),
        headers={"Authorization": f"Basic {token}", **TEXT},
    )
    assert answer.status_code == 200
