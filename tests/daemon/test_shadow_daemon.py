"""Shadow rule sets in a real `leadrules run` (SQLite and PostgreSQL): with `shadow: DIR` the
daemon evaluates the candidate beside live on the live stream; its decisions are recorded,
never delivered (a real local HTTP receiver behind the webhook adapter sees live's alone),
shown by `/ui/shadow` and `leadrules report --shadow`, kept across a crash without
duplicates; a candidate that does not load is refused with its position while live runs on,
and an edit that loads is picked up without a restart."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.daemon.harness import Daemon
from tests.receivers import HttpReceiver

pytestmark = pytest.mark.integration
TOKEN = "admin-token-for-shadow-tests"
AUTH = ("admin", TOKEN)


def shadowed(root: Path, database_url: str, hook_url: str, times: str = "2") -> Daemon:
    """A daemon whose candidate (`candidate/`) alerts sales after `times` pricing visits
    instead of live's 3."""
    daemon = Daemon(root, database_url, hook_url)
    daemon.prepare()
    shutil.copytree(root / "rules", root / "candidate")
    triggers = root / "candidate" / "triggers.yaml"
    triggers.write_text(triggers.read_text().replace("times: 3", f"times: {times}", 1))
    settings = root / "config" / "leadrules.yaml"
    settings.write_text(settings.read_text() + "shadow: candidate\n")
    return daemon


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def shown_counts(html: str) -> dict[str, int]:
    """The page's counts: shadow, live, would have, live only."""
    return {k: int(v) for k, v in re.findall(r"<div>([a-z ]+)<b>(\d+)</b></div>", html)}


def messages(now: datetime) -> list[dict[str, Any]]:
    def at(minutes: int) -> str:
        return iso(now - timedelta(minutes=minutes))

    visits = [
        {"type": "page", "userId": "u-pat", "timestamp": at(m), "properties": {"path": "/pricing"}}
        for m in (90, 60)
    ]
    demo = {"type": "track", "userId": "u-dee", "timestamp": at(30), "event": "Demo Requested"}
    return [*visits, demo]


def wait_for(check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("timed out")


def shadow_page(daemon: Daemon) -> str:
    page = httpx.get(f"{daemon.url}/ui/shadow", auth=AUTH, timeout=10)
    assert page.status_code == 200
    return page.text


def page_with(daemon: Daemon, text: str) -> str:
    """The shadow page, once it shows `text`."""
    return str(wait_for(lambda: (lambda h: h if text in h else None)(shadow_page(daemon))))


def caught_up(daemon: Daemon) -> Callable[[], str | None]:
    """The page once the shadow has read the whole log."""

    def check() -> str | None:
        html = shadow_page(daemon)
        return html if 'class="muted">0 event(s) not yet read' in html else None

    return check


def delivered_rules(http: HttpReceiver) -> list[str]:
    return [json.loads(r.body)["record"]["rule"] for r in http.requests]


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADRULES_ADMIN_TOKEN", TOKEN)


@pytest.mark.usefixtures("admin")
def test_shadow_decisions_are_recorded_never_delivered_and_shown_beside_live(
    tmp_path: Path, http: HttpReceiver, database_url: str
) -> None:
    daemon = shadowed(tmp_path, database_url, http.url)
    first_visit, second_visit, demo = messages(datetime.now(UTC))
    daemon.start()
    try:
        assert daemon.post("/v1/batch", {"batch": [first_visit, demo]}).status_code == 200
        daemon.settle()
        counts = shown_counts(wait_for(caught_up(daemon)))
        assert counts["would have"] == counts["live only"] == 0 < counts["live"]
        # A crash between the two visits: the restarted shadow rebuilds its state from the
        # log, so the second visit completes the candidate's count of two.
        daemon.kill()
        daemon.start()
        assert daemon.post("/v1/batch", {"batch": [second_visit]}).status_code == 200
        daemon.settle()
        page_with(daemon, "pricing-page-3x")
        html = wait_for(caught_up(daemon))
        counts = shown_counts(html)
        assert counts["live only"] == 0 and counts["would have"] >= 3
        assert counts["shadow"] == counts["live"] + counts["would have"]  # nothing twice
        would_have = html.split('id="would-have"')[1].split("</table>")[0]
        assert "pricing-page-3x" in would_have and "sequence:roi-calculator" in would_have
        assert "demo-request" not in would_have  # decided by both: no difference
        assert 'id="shadow-source">Candidate <b>candidate</b>' in html
        # Never delivered: the receiver has live's alert and nothing of the shadow's, and
        # the outbox holds nothing more to send.
        time.sleep(2.5)  # two outbox drains after the shadow recorded
        assert daemon.health()["outbox_depth"] == 0
        assert "demo-request" in delivered_rules(http)
        assert "pricing-page-3x" not in delivered_rules(http)
        assert all(not r.startswith("sequence:roi") for r in delivered_rules(http))
        # The same difference on the command line, from the recorded decisions.
        done = daemon.cli("report", "--shadow")
        assert done.returncode == 0, done.stderr
        lines = done.stdout.decode().splitlines()
        n = counts["would have"]
        assert lines[0] == (
            f"shadow: {counts['shadow']} decision(s), live: {counts['live']}; "
            f"{n} would have, 0 live only"
        )
        assert len(lines) == 1 + n and all(x.startswith("+ ") for x in lines[1:])
        assert "recorded by the daemon's shadow" in done.stderr.decode()
        # A third visit: live alerts (and delivers) now; the shadow's cooldown holds.
        third = dict(second_visit, timestamp=iso(datetime.now(UTC) - timedelta(minutes=5)))
        assert daemon.post("/v1/batch", {"batch": [third]}).status_code == 200
        wait_for(lambda: "pricing-page-3x" in delivered_rules(http))
        html = page_with(daemon, "live only<b>3</b>")
        live_only = html.split('id="live-only"')[1].split("</table>")[0]
        assert "pricing-page-3x" in live_only
        # Only the admin token opens the page.
        assert httpx.get(f"{daemon.url}/ui/shadow").status_code == 401
    finally:
        daemon.stop()


@pytest.mark.usefixtures("admin")
def test_bad_shadow_rules_are_refused_with_their_position_and_live_runs_on(
    tmp_path: Path, http: HttpReceiver, database_url: str
) -> None:
    daemon = shadowed(tmp_path, database_url, http.url, times="three")
    daemon.start()
    try:
        log = (tmp_path / "daemon.log").read_text()
        assert re.search(r"shadow rules not loaded: candidate/triggers\.yaml:\d+:\d+: ", log), log
        html = shadow_page(daemon)
        assert 'id="shadow-error"' in html and "candidate/triggers.yaml:" in html
        # Live is unaffected: the demo request is alerted and delivered.
        assert daemon.post("/v1/batch", {"batch": messages(datetime.now(UTC))}).status_code == 200
        daemon.settle()
        assert "demo-request" in delivered_rules(http)
        # A fix is picked up by the reload check; the shadow then reads the whole log.
        triggers = tmp_path / "candidate" / "triggers.yaml"
        triggers.write_text(triggers.read_text().replace("times: three", "times: 2", 1))
        html = page_with(daemon, "pricing-page-3x")
        assert 'id="shadow-error"' not in html
        # A later bad edit keeps the last good candidate running, and says why.
        triggers.write_text(triggers.read_text().replace("times: 2", "times: -1", 1))
        html = page_with(daemon, "shadow-error")
        assert "pricing-page-3x" in html
        assert daemon.health()["status"] == "ok"
    finally:
        daemon.stop()
