"""Secrets never leak: a real daemon whose channels all fail — a receiver answering 500 that
echoes the request's headers and path back, an SMTP server refusing the login — is fed events
and wrong write keys. Afterwards the write key, the SMTP password, the webhook secret, a
header token and the Slack webhook URL appear nowhere in the daemon's log, the outbox (the
database and `leadrules outbox`), `/metrics` or `/health`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import text

from leadrules.engine.daemon.store import Store
from tests.daemon.harness import KEY, Daemon
from tests.receivers import free_port

pytestmark = pytest.mark.integration

SLACK_TOKEN = "T0SECRET/B0SECRET/xoxSlackPathToken42"
WEBHOOK_SECRET = "whsec-Zq8vN3kP0wL5"
HEADER_TOKEN = "crm-bearer-Hh71Kd9QpX"
SMTP_PASSWORD = "smtp-pw-Ru5tyGate9"
WRONG_KEY = "wrong-key-close-to-test-write-key"


@pytest.fixture
def echo_url() -> Iterator[str]:
    """An endpoint that fails with 500 and echoes every header and the path in its body, as a
    careless or hostile receiver might."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            echoed = f"{self.path} {dict(self.headers.items())}".encode()
            self.send_response(500)
            self.end_headers()
            self.wfile.write(echoed)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def smtp_refusing_login() -> Iterator[int]:
    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    port = free_port()
    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=port,
        authenticator=lambda *args: AuthResult(success=False, handled=False),
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    yield port
    controller.stop()


def test_no_secret_reaches_logs_outbox_or_metrics(
    tmp_path: Path,
    echo_url: str,
    smtp_refusing_login: int,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slack_url = f"{echo_url}/services/{SLACK_TOKEN}"
    monkeypatch.setenv("SLACK_URL", slack_url)
    monkeypatch.setenv("HOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("HOOK_TOKEN", HEADER_TOKEN)
    monkeypatch.setenv("SMTP_PASSWORD", SMTP_PASSWORD)
    daemon = Daemon(tmp_path, database_url, f"{echo_url}/hook")
    daemon.prepare()
    hook = (
        f'{{adapter: webhook, url: "{echo_url}/crm", secret: "${{HOOK_SECRET}}", '
        'headers: {Authorization: "Bearer ${HOOK_TOKEN}"}}'
    )
    (tmp_path / "config" / "channels.yaml").write_text(
        "channels:\n"
        '  sales: {adapter: slack, webhook_url: "${SLACK_URL}"}\n'
        f"  sales-managers: {hook}\n"
        f"  crm: {hook}\n"
        f"  log: {hook}\n"
        f"  digest: {hook}\n"
        f"  email: {{adapter: smtp, host: 127.0.0.1, port: {smtp_refusing_login}, "
        'sender: "m@example.com", username: marketing, password: "${SMTP_PASSWORD}"}\n'
    )
    config = tmp_path / "config" / "leadrules.yaml"
    config.write_text(
        config.read_text().replace("max_attempts: 5", "max_attempts: 2")
    )  # dead letters within seconds
    daemon.start()
    try:
        events = [
            {"type": "identify", "userId": "u-s", "messageId": "s1",
             "traits": {"name": "Sam", "email": "sam@example.com", "title": "VP Sales",
                        "company": {"size": 900}, "industry": "software"}},
            {"type": "track", "userId": "u-s", "event": "Demo Requested", "messageId": "s2"},
            *[{"type": "page", "userId": "u-s", "properties": {"path": "/pricing"},
               "messageId": f"p{i}"} for i in range(3)],
        ]  # fmt: skip
        assert daemon.post("/v1/batch", {"batch": events}).status_code == 200
        for auth in [(WRONG_KEY, ""), (KEY + "x", "")]:
            bad = httpx.post(f"{daemon.url}/v1/track", json=events[1], auth=auth, timeout=10)
            assert bad.status_code == 401
            assert WRONG_KEY not in bad.text and KEY not in bad.text
        status = daemon.settle(timeout=60)
        assert status["dead_letters"] >= 3  # slack, the webhooks and e-mail all failed
        metrics = httpx.get(f"{daemon.url}/metrics", timeout=10)
        health = httpx.get(f"{daemon.url}/health", timeout=10)
        outbox = daemon.cli("outbox", "--limit", "500")
        assert outbox.returncode == 0, outbox.stderr
    finally:
        daemon.stop()
    store = Store(database_url)
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM decision")).all()
    store.dispose()
    errors = [r._mapping["last_error"] for r in rows if r._mapping["last_error"]]
    assert any("HTTP 500" in e for e in errors) and any("smtp" in e for e in errors)
    assert any("[redacted]" in e for e in errors)  # the echo was there, and was cut out
    places = {
        "daemon log": (tmp_path / "daemon.log").read_text(),
        "decision table": "\n".join(repr(tuple(r)) for r in rows),
        "leadrules outbox": outbox.stdout.decode() + outbox.stderr.decode(),
        "/metrics": metrics.text,
        "/health": health.text,
    }
    assert "HTTP 500" in places["daemon log"]  # the failures were logged ...
    secrets = {
        "write key": KEY,
        "wrong write key": WRONG_KEY,
        "webhook secret": WEBHOOK_SECRET,
        "header token": HEADER_TOKEN,
        "SMTP password": SMTP_PASSWORD,
        "Slack URL": slack_url,
        "Slack URL path": SLACK_TOKEN,
    }
    leaks = [
        f"{name} in {place}"
        for name, secret in secrets.items()
        for place, content in places.items()
        if secret in content
    ]
    assert leaks == []  # ... and no secret with them
