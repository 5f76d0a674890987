"""A real `leadrules run` (tests/daemon/harness.py) with extra ingest settings and
environment, on SQLite, for the HTTP-layer tests: CORS, Segment's routes, the webhook."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.daemon.harness import Daemon
from tests.receivers import HttpReceiver, http_receiver


@contextmanager
def ingest_daemon(
    root: Path, ingest: dict[str, Any] | None = None, env: dict[str, str] | None = None
) -> Iterator[tuple[Daemon, HttpReceiver]]:
    """Start a daemon whose `ingest:` settings also hold `ingest` (JSON is YAML) and whose
    environment also holds `env`; yield it with the webhook receiver its channels post to."""
    receivers = http_receiver()
    hook = next(receivers)
    daemon = Daemon(root, f"sqlite:///{root}/leadrules.db", hook.url)
    daemon.prepare()
    if ingest:
        config = root / "config" / "leadrules.yaml"
        extra = ", ".join(f"{key}: {json.dumps(value)}" for key, value in ingest.items())
        config.write_text(config.read_text().replace("ingest: {", f"ingest: {{{extra}, ", 1))
    saved = {name: os.environ.get(name) for name in env or {}}
    os.environ.update(env or {})
    try:
        daemon.start()  # the child process takes a copy of the environment now
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        yield daemon, hook
    finally:
        daemon.stop()
        receivers.close()


def exported(daemon: Daemon) -> list[dict[str, Any]]:
    """The daemon's event log as `leadrules export` writes it."""
    out = daemon.root / "export.jsonl"
    result = daemon.cli("export", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in out.read_text().splitlines()]


def stored_messages(daemon: Daemon) -> list[dict[str, Any]]:
    """Every stored message in arrival order, read from the daemon's SQLite file."""
    with sqlite3.connect(daemon.root / "leadrules.db") as db:
        rows = db.execute("SELECT raw FROM event ORDER BY seq").fetchall()
    return [json.loads(raw) for (raw,) in rows]


def wait_for_alert(hook: HttpReceiver, prospect: str, timeout: float = 20) -> dict[str, Any]:
    """The pricing alert delivered for `prospect` (the sales channel's webhook body)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for request in list(hook.requests):
            body = json.loads(request.body)
            record = body["record"]
            if record["rule"] == "pricing-page-3x" and record["prospect"] == prospect:
                return dict(body)
        time.sleep(0.2)
    raise AssertionError(f"no pricing alert for {prospect}: {len(hook.requests)} deliveries")
