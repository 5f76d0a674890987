"""Adapters against real local servers: an HTTP receiver and an aiosmtpd SMTP server."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from leadrules.adapters.base import Message
from leadrules.adapters.memory import MemoryAdapter
from leadrules.adapters.slack import SlackAdapter
from leadrules.adapters.smtp import SmtpAdapter
from leadrules.adapters.webhook import WebhookAdapter
from leadrules.engine.errors import DeliveryError
from tests.receivers import HttpReceiver, SmtpReceiver, free_port

pytestmark = pytest.mark.integration

CONTEXT = {
    "prospect": "u-ann",
    "traits": {
        "name": "Ann Lee",
        "email": "ann@acme.example",
        "title": "VP Marketing",
        "company": {"name": "Acme"},
    },
    "reasons": [
        {
            "rule": "demo-requested",
            "points": 40,
            "at": "2026-03-04T10:00:00Z",
            "event": {"event": "Demo Requested"},
        },
        {"rule": "senior-title", "points": 20, "at": "2026-03-03T14:05:00Z", "event": {}},
    ],
    "recent": [
        {"at": "2026-03-04T10:00:00Z", "type": "track", "event": "Demo Requested"},
        {"at": "2026-03-04T09:58:00Z", "type": "page", "path": "/pricing"},
    ],
    "sla_deadline": "2026-03-04T14:00:00Z",
}


def message(audience: str = "sales", to: str | None = None, key: str = "m1/0") -> Message:
    record = {
        "at": "2026-03-04T10:00:00Z",
        "prospect": "u-ann",
        "action": "notify" if audience == "sales" else "send",
        "rule": "demo-request",
        "channel": "x",
        "template": "t",
        "score": 85,
        "stage": "mql",
    }
    return Message(
        key=key,
        channel="x",
        audience=audience,
        record=record,
        subject="Demo requested: Ann Lee",  # type: ignore[arg-type]
        text="Ann asked for a demo.\n\nReply within the hour.",
        to=to,
        context=CONTEXT,
    )


def test_slack_posts_block_kit_with_who_score_reasons_activity_and_sla(http: HttpReceiver) -> None:
    SlackAdapter("sales", {"webhook_url": http.url}).send(message())
    (request,) = http.requests
    payload = json.loads(request.body)
    text = json.dumps(payload)
    assert payload["blocks"][0]["text"]["text"] == "Ann Lee · VP Marketing · Acme — score 85, mql"
    for expected in (
        "+40  demo-requested",
        "+20  senior-title",
        "Demo Requested",
        "/pricing",
        "2026-03-04T14:00:00Z",
        "Ann asked for a demo.",
    ):
        assert expected in text
    assert payload["text"].startswith("Demo requested: Ann Lee")
    assert request.headers["idempotency-key"] == "m1/0"


def test_webhook_signs_the_exact_body_and_keeps_the_key_on_every_attempt(
    http: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_SECRET", "s3cret")
    http.statuses = [503]
    adapter = WebhookAdapter("crm", {"url": http.url, "secret": "${CRM_SECRET}"})
    with pytest.raises(DeliveryError) as first:
        adapter.send(message())
    assert first.value.retryable
    adapter.send(message())
    assert [r.headers["idempotency-key"] for r in http.requests] == ["m1/0", "m1/0"]
    request = http.requests[-1]
    stamp = request.headers["x-leadrules-signature"].split(",")[0].removeprefix("t=")
    signed = stamp.encode() + b"." + request.body
    expected = hmac.new(b"s3cret", signed, hashlib.sha256).hexdigest()
    assert request.headers["x-leadrules-signature"] == f"t={stamp},v1={expected}"
    assert json.loads(request.body)["record"]["rule"] == "demo-request"


@pytest.mark.parametrize(
    ("status", "retryable"), [(429, True), (500, True), (502, True), (400, False), (404, False)]
)
def test_http_status_maps_to_retryable_or_final(
    http: HttpReceiver, status: int, retryable: bool
) -> None:
    http.default_status = status
    with pytest.raises(DeliveryError) as caught:
        WebhookAdapter("crm", {"url": http.url}).send(message())
    assert caught.value.retryable is retryable


def test_a_receiver_that_is_down_is_retryable() -> None:
    with pytest.raises(DeliveryError) as caught:
        SlackAdapter(
            "sales", {"webhook_url": f"http://127.0.0.1:{free_port()}/x", "timeout": 2}
        ).send(message())
    assert caught.value.retryable


def test_a_missing_secret_is_a_final_error_naming_the_variable(
    http: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOPE_SECRET", raising=False)
    with pytest.raises(DeliveryError) as caught:
        WebhookAdapter("crm", {"url": http.url, "secret": "${NOPE_SECRET}"}).send(message())
    assert not caught.value.retryable and "NOPE_SECRET" in str(caught.value)
    assert http.requests == []


def test_smtp_sends_multipart_text_and_html_with_list_unsubscribe(smtp: SmtpReceiver) -> None:
    adapter = SmtpAdapter(
        "email",
        {
            "host": smtp.host,
            "port": smtp.port,
            "sender": "marketing@example.com",
            "list_unsubscribe": "<mailto:unsubscribe@example.com>",
        },
    )
    adapter.send(message("prospect", to="ann@acme.example"))
    ((sender, recipients, email),) = smtp.messages
    assert (sender, recipients) == ("marketing@example.com", ["ann@acme.example"])
    assert email["Subject"] == "Demo requested: Ann Lee"
    assert email["List-Unsubscribe"] == "<mailto:unsubscribe@example.com>"
    assert email["X-Leadrules-Idempotency-Key"] == "m1/0"
    kinds = [part.get_content_type() for part in email.walk()]
    assert kinds == ["multipart/alternative", "text/plain", "text/html"]
    html = email.get_payload()[1].get_payload(decode=True).decode()
    assert "<p>Reply within the hour.</p>" in html


def test_smtp_message_id_is_the_same_for_the_same_key(smtp: SmtpReceiver) -> None:
    adapter = SmtpAdapter(
        "email", {"host": smtp.host, "port": smtp.port, "sender": "m@example.com"}
    )
    adapter.send(message("prospect", to="a@b.example"))
    adapter.send(message("prospect", to="a@b.example"))
    assert smtp.messages[0][2]["Message-ID"] == smtp.messages[1][2]["Message-ID"]


def test_smtp_without_an_email_trait_is_final_and_a_down_server_is_retryable() -> None:
    adapter = SmtpAdapter(
        "email", {"host": "127.0.0.1", "port": free_port(), "sender": "m@example.com", "timeout": 2}
    )
    with pytest.raises(DeliveryError) as no_address:
        adapter.send(message("prospect", to=None))
    assert not no_address.value.retryable
    with pytest.raises(DeliveryError) as down:
        adapter.send(message("prospect", to="a@b.example"))
    assert down.value.retryable


def test_memory_adapter_records_and_can_fail_on_purpose() -> None:
    MemoryAdapter.clear()
    adapter = MemoryAdapter("mem", {"fail_times": 1})
    with pytest.raises(DeliveryError):
        adapter.send(message())
    adapter.send(message())
    assert [m.key for m in MemoryAdapter.sent("mem")] == ["m1/0"]
