"""Webhook signatures cover a timestamp and the body: a receiver running the check printed in
docs/reliability.md accepts fresh requests and refuses a captured one sent again later, a
tampered body and a wrong secret."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadrules.adapters import webhook
from leadrules.adapters.base import Message
from leadrules.adapters.webhook import HEADER, WebhookAdapter
from leadrules.engine.errors import DeliveryError

pytestmark = pytest.mark.integration

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
SECRET = "whsec-test-1234"
Verify = Callable[[str, str, bytes, float], bool]


def documented_verify() -> Verify:
    """The `verify` function exactly as docs/reliability.md prints it."""
    text = DOCS.read_text()
    block = re.search(r"<!-- verify-signature -->\n```python\n(.*?)```", text, re.S)
    assert block, "docs/reliability.md lost its verification example"
    scope: dict[str, Any] = {}
    exec(compile(block.group(1), str(DOCS), "exec"), scope)  # our own docs, read as code
    return scope["verify"]  # type: ignore[no-any-return]


@dataclass
class Receiver:
    """A CRM endpoint that checks signatures with the documented function; `now` is its
    clock (seconds), and `accepted` the bodies it took."""

    url: str
    now: float
    accepted: list[bytes] = field(default_factory=list)
    refused: int = 0
    captured: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    check = documented_verify()
    state: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = dict(self.headers.items())
            state.captured.append((headers, raw))
            ok = check(SECRET, self.headers.get(HEADER, ""), raw, state.now)
            if ok:
                state.accepted.append(raw)
            else:
                state.refused += 1
            self.send_response(200 if ok else 401)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Receiver(f"http://127.0.0.1:{server.server_address[1]}/crm", now=1_800_000_000)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def message(key: str = "m1/0", text: str = "Ann asked for a demo.") -> Message:
    record = {"prospect": "u-ann", "action": "notify", "rule": "demo-request", "key": key}
    return Message(key, "crm", "sales", record, "Demo requested", text)


def adapter(receiver: Receiver, secret: str = SECRET, clock: float | None = None) -> Any:
    sender = WebhookAdapter("crm", {"url": receiver.url, "secret": secret})
    sender.now = lambda: receiver.now if clock is None else clock
    return sender


def test_a_fresh_signed_request_is_accepted(receiver: Receiver) -> None:
    adapter(receiver).send(message())
    assert len(receiver.accepted) == 1 and receiver.refused == 0
    ((headers, raw),) = receiver.captured
    stamp, v1 = headers[HEADER].split(",")
    assert stamp == f"t={int(receiver.now)}" and re.fullmatch(r"v1=[0-9a-f]{64}", v1)
    assert webhook.verify(SECRET, headers[HEADER], raw, receiver.now)


def test_a_captured_request_sent_again_later_is_refused(receiver: Receiver) -> None:
    adapter(receiver).send(message())
    ((headers, raw),) = receiver.captured
    replay = {HEADER: headers[HEADER], "Content-Type": "application/json"}
    receiver.now += 60  # within the tolerance: still accepted (and the key dedupes it)
    assert httpx.post(receiver.url, content=raw, headers=replay).status_code == 200
    receiver.now += 300  # six minutes after signing: the same bytes are refused
    assert httpx.post(receiver.url, content=raw, headers=replay).status_code == 401
    assert receiver.refused == 1


def test_a_tampered_body_or_timestamp_or_wrong_secret_is_refused(receiver: Receiver) -> None:
    adapter(receiver).send(message())
    ((headers, raw),) = receiver.captured
    signed = headers[HEADER]
    forged_time = signed.replace(f"t={int(receiver.now)}", f"t={int(receiver.now) + 1}")
    tries = [
        (signed, raw.replace(b"Ann asked", b"Bob asked")),
        (forged_time, raw),
        (signed.split(",")[1], raw),  # no timestamp
        ("", raw),
    ]
    for header, body in tries:
        status = httpx.post(receiver.url, content=body, headers={HEADER: header}).status_code
        assert status == 401, header
    with pytest.raises(DeliveryError) as wrong:
        adapter(receiver, secret="not-the-secret").send(message())
    assert not wrong.value.retryable  # 401 is final: retrying cannot fix a wrong secret
    assert receiver.refused == len(tries) + 1


def test_a_request_signed_by_a_skewed_clock_is_refused(receiver: Receiver) -> None:
    with pytest.raises(DeliveryError):
        adapter(receiver, clock=receiver.now - 3600).send(message())
    assert receiver.accepted == []


def test_each_attempt_is_signed_afresh_with_the_same_key_and_body(receiver: Receiver) -> None:
    sender = adapter(receiver)
    sender.send(message())
    receiver.now += 1000
    sender.send(message())
    (h1, b1), (h2, b2) = receiver.captured
    assert b1 == b2 and h1["Idempotency-Key"] == h2["Idempotency-Key"] == "m1/0"
    assert h1[HEADER] != h2[HEADER] and len(receiver.accepted) == 2


def test_a_garbled_header_is_refused_not_raised() -> None:
    check = documented_verify()
    garbled = [
        "t=100,v1=\u00e9",
        "t=\u00b2,v1=00",
        "t=" + "9" * 5000,
        "v1",
        "t=,v1=",
        ",,",
        "t=100",
    ]
    for header in garbled:
        assert check(SECRET, header, b"{}", 100) is False
        assert webhook.verify(SECRET, header, b"{}", 100) is False


def test_the_documented_check_is_the_shipped_one() -> None:
    documented = documented_verify()
    body = b'{"key":"k"}'
    for now, secret in [(100, SECRET), (100, "other"), (500, SECRET), (399, SECRET)]:
        header = webhook.signature(SECRET, body, 100)
        assert documented(secret, header, body, now) == webhook.verify(secret, header, body, now)
