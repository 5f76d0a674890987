"""The `/ui` dashboard of a real `leadrules run`: only the admin token opens it (never a
write key), and it shows the funnel, the open MQL with its SLA clock, recent decisions and a
prospect's explanation found by any of its ids."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.daemon.harness import KEY, Daemon
from tests.receivers import HttpReceiver

pytestmark = pytest.mark.integration
TOKEN = "admin-token-for-tests"


def history(now: datetime) -> list[dict[str, object]]:
    def at(minutes: int) -> str:
        return (now - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")

    anon = {"anonymousId": "anon-ann"}
    user = {"userId": "u-ann"}
    return [
        {"type": "page", **anon, "timestamp": at(30), "properties": {"path": "/pricing"}},
        {
            "type": "identify",
            **anon,
            **user,
            "timestamp": at(25),
            "traits": {"name": "Ann Lee", "title": "VP Marketing", "industry": "software"},
        },
        {
            "type": "track",
            **user,
            "timestamp": at(20),
            "event": "Video Watched",
            "properties": {"category": "case-study", "title": "How Globex answers in minutes"},
        },
        {"type": "track", **user, "timestamp": at(10), "event": "Demo Requested"},
    ]


@pytest.fixture
def daemon(
    tmp_path: Path, http: HttpReceiver, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Daemon]:
    monkeypatch.setenv("LEADRULES_ADMIN_TOKEN", TOKEN)
    d = Daemon(tmp_path, database_url, http.url)
    d.prepare()
    d.start()
    yield d
    d.stop()


def test_dashboard_needs_the_admin_token_and_shows_the_funnel(daemon: Daemon) -> None:
    now = datetime.now(UTC)
    assert daemon.post("/v1/batch", {"batch": history(now)}).status_code == 200
    daemon.settle()
    assert httpx.get(f"{daemon.url}/ui").status_code == 401
    assert httpx.get(f"{daemon.url}/ui", auth=(KEY, "")).status_code == 401
    assert httpx.get(f"{daemon.url}/ui", auth=("x", KEY)).status_code == 401
    page = httpx.get(f"{daemon.url}/ui", auth=("admin", TOKEN))
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]
    html = page.text
    assert "mql<b>1</b>" in html
    assert 'href="/ui/prospect?id=u-ann"' in html
    assert "min left" in html  # 4 h SLA from an MQL 10 minutes ago
    assert "new-mql" in html  # the alert among the recent decisions
    bearer = httpx.get(f"{daemon.url}/ui", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 200


def test_prospect_explanation_by_any_id(daemon: Daemon) -> None:
    now = datetime.now(UTC)
    assert daemon.post("/v1/batch", {"batch": history(now)}).status_code == 200
    daemon.settle()
    auth = ("admin", TOKEN)
    page = httpx.get(f"{daemon.url}/ui/prospect", params={"id": "anon-ann"}, auth=auth)
    assert page.status_code == 200
    html = page.text
    assert '<h1 id="prospect">u-ann</h1>' in html  # the alias resolves to the prospect
    for reason in ("demo-requested", "senior-title", "case-study-watched", "pricing-visit"):
        assert reason in html
    assert "Video Watched: How Globex answers in minutes" in html
    assert "<td>sla</td>" in html  # the pending SLA timer
    assert "<td>mql</td>" in html
    missing = httpx.get(f"{daemon.url}/ui/prospect", params={"id": "nobody"}, auth=auth)
    assert missing.status_code == 404 and "No prospect nobody" in missing.text
    escaped = httpx.get(f"{daemon.url}/ui/prospect", params={"id": "<b>x</b>"}, auth=auth)
    assert "<b>x</b>" not in escaped.text


def test_report_over_the_daemons_database(daemon: Daemon) -> None:
    assert daemon.post("/v1/batch", {"batch": history(datetime.now(UTC))}).status_code == 200
    daemon.settle()
    done = daemon.cli("report", "--json", "-", "--quiet")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["events"] == 4 and report["prospects"] == 1  # anon-ann merged into u-ann
    assert report["funnel"]["mql"] == 1
    assert {c["rule"] for c in report["rule_contribution"]} >= {"demo-requested", "senior-title"}
    assert report["forecast"]["open"]["mql"] == 1


def test_shadow_page_needs_the_admin_token_and_says_how_to_set_a_shadow(daemon: Daemon) -> None:
    assert httpx.get(f"{daemon.url}/ui/shadow").status_code == 401
    assert httpx.get(f"{daemon.url}/ui/shadow", auth=("x", KEY)).status_code == 401
    page = httpx.get(f"{daemon.url}/ui/shadow", auth=("admin", TOKEN))
    assert page.status_code == 200
    assert 'id="shadow-off"' in page.text and "shadow: DIR" in page.text
    assert 'id="shadow-counts"' not in page.text  # nothing recorded on this database
    assert 'href="/ui/shadow"' in httpx.get(f"{daemon.url}/ui", auth=("admin", TOKEN)).text
