"""Segment's analytics-node (npm) from a Node.js server posts to the daemon: each event is
stored once and the pricing alert is delivered, with the page views out of timestamp order."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.browser.conftest import HERE, require
from tests.daemon.harness import KEY, Daemon
from tests.daemon.ingest_daemon import stored_messages, wait_for_alert
from tests.receivers import HttpReceiver

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_analytics_node_events_are_stored_once_and_raise_the_alert(
    daemon: Daemon, hook: HttpReceiver
) -> None:
    require(browser=False)
    user = "analytics-node-1"
    run = subprocess.run(
        ["node", "server-client.mjs", daemon.url, KEY, user],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    exchanges = json.loads(run.stdout.strip().splitlines()[-1])
    assert exchanges, "analytics-node sent nothing"
    assert all(e["status"] == 200 and e["url"] == f"{daemon.url}/v1/batch" for e in exchanges)
    assert all(e["headers"]["authorization"].startswith("Basic ") for e in exchanges)
    stored = [m for m in stored_messages(daemon) if m.get("userId") == user]
    assert sorted(m["type"] for m in stored) == ["identify", "page", "page", "page", "track"]
    views = [m["timestamp"] for m in stored if m["type"] == "page"]
    assert views != sorted(views)
    assert wait_for_alert(hook, user)["record"]["rule"] == "pricing-page-3x"
    folder = os.environ.get("LEADRULES_TRAFFIC_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        lines = [
            f"{e['method']} /v1/batch {{'content-type': {e['headers'].get('content-type')!r}, "
            f"'authorization': 'Basic …', 'user-agent': {e['headers'].get('user-agent')!r}}} "
            f"-> {e['status']}"
            for e in exchanges
        ]
        Path(folder, "analytics-node.txt").write_text("\n".join(lines) + "\n")
