"""`POST /v1/webhook`: hosted Segment (Webhooks destination, signed with `X-Signature`) and
RudderStack's Webhook destination (write key in a custom `Authorization` header) forward to
the daemon; the forwarded pricing views raise the pricing alert like a tracker's would."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from leadrules.engine.daemon.ingest_http import Refused
from leadrules.engine.daemon.segment_webhook import check_signature, signature
from leadrules.engine.errors import ConfigError
from leadrules.engine.language.settings import load_settings
from tests.daemon.harness import KEY, Daemon
from tests.daemon.ingest_daemon import ingest_daemon, stored_messages, wait_for_alert
from tests.receivers import HttpReceiver

pytestmark = pytest.mark.integration

SECRET = "whsec-shared-with-segment"


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, HttpReceiver]]:
    root = tmp_path_factory.mktemp("webhook")
    settings = yaml.safe_load((Path(__file__).parent / "segment-webhook.yaml").read_text())
    settings = settings["ingest"]
    with ingest_daemon(root, settings, {"SEGMENT_WEBHOOK_SECRET": SECRET}) as running:
        yield running


def forwarded(kind: str, user: str, when: datetime, **fields: Any) -> dict[str, Any]:
    """An event as Segment's pipeline forwards it (server-side fields added on the way)."""
    stamp = when.isoformat().replace("+00:00", "Z")
    return {
        "type": kind,
        "userId": user,
        "messageId": f"{user}-{kind}-{stamp}",
        "timestamp": stamp,
        "receivedAt": stamp,
        "sentAt": stamp,
        "channel": "client",
        "context": {"library": {"name": "analytics.js", "version": "next-1.84.3"}},
        "projectId": "proj-1",
        "version": 2,
        "writeKey": KEY,
        **fields,
    }


def signed_post(daemon: Daemon, body: bytes, sig: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json", "User-Agent": "Segmentio/1.0"}
    if sig is not None:
        headers["X-Signature"] = sig
    return httpx.post(f"{daemon.url}/v1/webhook", content=body, headers=headers)


def test_signature_is_hex_hmac_sha1_of_the_body() -> None:
    body = b'{"type":"track"}'
    expected = hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    assert signature(SECRET, body) == expected
    check_signature(SECRET, expected.upper(), body)
    with pytest.raises(Refused, match="does not match"):
        check_signature(SECRET, expected, body + b" ")
    with pytest.raises(Refused, match="no secret is set"):
        check_signature(None, expected, body)


def test_signed_events_are_stored_and_raise_the_pricing_alert(
    hosted: tuple[Daemon, HttpReceiver],
) -> None:
    daemon, hook = hosted
    now = datetime.now(UTC)
    identify = forwarded("identify", "hosted-1", now, traits={"name": "Ada", "title": "CTO"})
    views = [
        forwarded("page", "hosted-1", now - timedelta(hours=h), properties={"path": "/pricing"})
        for h in (3, 2, 1)
    ]
    for event in [identify, *views]:
        body = json.dumps(event).encode()
        answer = signed_post(daemon, body, signature(SECRET, body))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"success": True}
    mine = [m for m in stored_messages(daemon) if m.get("userId") == "hosted-1"]
    assert [m["type"] for m in mine] == ["identify", "page", "page", "page"]
    assert all("writeKey" not in m for m in mine)
    assert wait_for_alert(hook, "hosted-1")["record"]["rule"] == "pricing-page-3x"


def test_a_bad_or_unexpected_signature_is_refused_and_nothing_stored(
    hosted: tuple[Daemon, HttpReceiver],
) -> None:
    daemon, _ = hosted
    event = forwarded("track", "hosted-2", datetime.now(UTC), event="Ping")
    body = json.dumps(event).encode()
    wrong = signed_post(daemon, body, signature("another-secret", body))
    assert wrong.status_code == 401
    assert "X-Signature" in wrong.json()["message"]
    tampered = signed_post(daemon, body.replace(b"Ping", b"Pong"), signature(SECRET, body))
    assert tampered.status_code == 401
    unsigned = signed_post(daemon, json.dumps({**event, "writeKey": "nope"}).encode(), None)
    assert unsigned.status_code == 401
    assert not [m for m in stored_messages(daemon) if m.get("userId") == "hosted-2"]


def test_rudderstack_webhook_destination_authenticates_with_the_write_key(
    hosted: tuple[Daemon, HttpReceiver],
) -> None:
    daemon, _ = hosted
    event = forwarded("track", "rudder-hook-1", datetime.now(UTC), event="Demo Requested")
    del event["writeKey"]
    answer = httpx.post(f"{daemon.url}/v1/webhook", json=event, auth=(KEY, ""))
    assert answer.status_code == 200, answer.text
    [stored] = [m for m in stored_messages(daemon) if m.get("userId") == "rudder-hook-1"]
    assert stored["event"] == "Demo Requested"


def test_segment_batching_sends_an_array_of_events(hosted: tuple[Daemon, HttpReceiver]) -> None:
    daemon, _ = hosted
    now = datetime.now(UTC)
    events = [forwarded("track", "batch-hook-1", now, event=f"E{i}") for i in range(3)]
    events[1]["messageId"] += "-1"
    events[2]["messageId"] += "-2"
    events.append({"type": "track", "userId": "batch-hook-1"})  # no event name
    body = json.dumps(events).encode()
    answer = signed_post(daemon, body, signature(SECRET, body))
    assert answer.status_code == 400
    assert [(e["index"], e["field"]) for e in answer.json()["errors"]] == [(3, "event")]
    names = [m["event"] for m in stored_messages(daemon) if m.get("userId") == "batch-hook-1"]
    assert names == ["E0", "E1", "E2"]
    scalar = signed_post(daemon, b"42", signature(SECRET, b"42"))
    assert scalar.status_code == 400


def test_a_secret_written_in_the_config_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "leadrules.yaml").write_text("ingest:\n  segment_webhook_secret: plain-text\n")
    with pytest.raises(ConfigError) as error:
        load_settings(tmp_path)
    assert "leadrules.yaml:2:" in str(error.value)
    assert "${ENV_VAR}" in str(error.value)
