"""Access to a real daemon: `/metrics` behind `ingest.metrics_token` when set, the dashboard
behind its admin token (never a write key), 127.0.0.1 unless told, and request sizes checked
before a body is read (Content-Length) and while it is read (chunked)."""

from __future__ import annotations

import base64
import socket
import time
from pathlib import Path

import httpx

from leadrules.engine.daemon.runtime import DaemonOptions
from leadrules.engine.language.settings import Settings
from tests.daemon.harness import KEY
from tests.daemon.ingest_daemon import ingest_daemon

TOKEN = "metrics-token-0123456789"
ADMIN = "admin-token-0123456789"


def test_the_daemon_binds_to_loopback_unless_told() -> None:
    assert Settings().ingest.host == "127.0.0.1"
    assert DaemonOptions().host is None  # no --host: the setting (loopback by default)


def test_metrics_need_the_token_when_one_is_set(tmp_path: Path) -> None:
    settings = {"metrics_token": "${METRICS_TOKEN}"}
    env = {"METRICS_TOKEN": TOKEN, "LEADRULES_ADMIN_TOKEN": ADMIN}
    with ingest_daemon(tmp_path, settings, env) as (daemon, _):
        url = f"{daemon.url}/metrics"
        assert httpx.get(url, timeout=10).status_code == 401
        assert (
            httpx.get(url, headers={"authorization": "Bearer nope"}, timeout=10).status_code == 401
        )
        assert (
            httpx.get(url, auth=(KEY, ""), timeout=10).status_code == 401
        )  # a write key is not it
        bearer = httpx.get(url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert bearer.status_code == 200 and "leadrules_events_accepted" in bearer.text
        assert httpx.get(url, auth=("prometheus", TOKEN), timeout=10).status_code == 200
        assert TOKEN not in bearer.text
        # The dashboard: its own admin token, never the write key nor the metrics token.
        ui = f"{daemon.url}/ui"
        assert httpx.get(ui, timeout=10).status_code == 401
        assert httpx.get(ui, auth=("x", KEY), timeout=10).status_code == 401
        assert httpx.get(ui, auth=("x", TOKEN), timeout=10).status_code == 401
        assert httpx.get(ui, auth=("x", ADMIN), timeout=10).status_code == 200


def test_metrics_closed_when_the_token_variable_is_unset(tmp_path: Path) -> None:
    with ingest_daemon(tmp_path, {"metrics_token": "${UNSET_METRICS_TOKEN}"}) as (daemon, _):
        assert httpx.get(f"{daemon.url}/metrics", timeout=10).status_code == 401
        blank = httpx.get(f"{daemon.url}/metrics", auth=("prometheus", ""), timeout=10)
        assert blank.status_code == 401


def _request(port: int, head: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(head.encode())
    return sock


def _status(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1])


def test_sizes_checked_before_and_while_reading(tmp_path: Path) -> None:
    auth = base64.b64encode(f"{KEY}:".encode()).decode()
    with ingest_daemon(tmp_path) as (daemon, _):
        # A Content-Length over the limit: 413 with not a byte of the body sent.
        started = time.monotonic()
        sock = _request(
            daemon.port,
            "POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Basic {auth}\r\nContent-Length: 50000000\r\n\r\n",
        )
        assert _status(sock) == 413
        assert time.monotonic() - started < 5
        sock.close()
        # Chunked, no length: refused once past the limit, long before 50 MB are sent.
        sock = _request(
            daemon.port,
            "POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Basic {auth}\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        sent = 0
        chunk = b" " * 65536
        try:
            while sent < 50_000_000:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
                sock.settimeout(0.0)
                try:
                    if sock.recv(1, socket.MSG_PEEK):
                        break
                except BlockingIOError:
                    pass
                finally:
                    sock.settimeout(10)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert sent < 5_000_000, sent
        assert _status(sock) == 413
        sock.close()
        assert daemon.health()["status"] == "ok"
