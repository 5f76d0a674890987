"""The HTML report, the backtest report and the `/ui` dashboard in Debian's chromium: the
charts draw (plotly's SVG with data in it), the report asks no host for anything, the
dashboard shows a prospect's explanation and the shadow rule set's would-have decisions;
screenshots are kept as artifacts (`LEADRULES_ARTIFACTS`, default build/screenshots)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.generate import generate
from tests.daemon.harness import ROOT, Daemon
from tests.daemon.test_shadow_daemon import messages, shadowed
from tests.daemon.test_ui import TOKEN, history
from tests.receivers import HttpReceiver

pytestmark = pytest.mark.browser
ARTIFACTS = Path(os.environ.get("LEADRULES_ARTIFACTS", ROOT / "build" / "screenshots"))


def _cli(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "leadrules.engine.cli", *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A generated half year with outcomes, reported and backtested (threshold 80 → 65)."""
    root = tmp_path_factory.mktemp("reports")
    events = root / "events.jsonl"
    messages = generate(6000, 5, prospects=300, days=180)
    events.write_text("".join(json.dumps(m) + "\n" for m in messages))
    candidate = root / "candidate" / "rules"
    candidate.mkdir(parents=True)
    for path in (ROOT / "rules").rglob("*"):
        if path.is_file():
            target = candidate / path.relative_to(ROOT / "rules")
            target.parent.mkdir(parents=True, exist_ok=True)
            text = path.read_text()
            target.write_text(text.replace("mql_threshold: 80", "mql_threshold: 65"))
    _cli("report", str(events), "--html", str(root / "report.html"), "--quiet")
    _cli(
        "backtest", "--baseline", str(ROOT), "--candidate", str(root / "candidate"), str(events),
        "--html", str(root / "backtest.html"), "--quiet",
    )  # fmt: skip
    return {"report": root / "report.html", "backtest": root / "backtest.html"}


def _open_offline(chromium: Any, path: Path) -> tuple[Any, list[str]]:
    page = chromium.new_page(viewport={"width": 1200, "height": 900})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri())
    return page, requests


@pytest.mark.parametrize(("name", "charts"), [("report", 6), ("backtest", 4)])
def test_report_charts_draw_without_any_request(
    chromium: Any, reports: dict[str, Path], name: str, charts: int
) -> None:
    page, requests = _open_offline(chromium, reports[name])
    page.wait_for_function(
        f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}"
    )
    plots = page.locator(".js-plotly-plot")
    assert plots.count() == charts
    for i in range(charts):  # every chart drew at least one trace with marks in it
        assert plots.nth(i).locator("g.trace, g.funnel, g.barlayer .point").count() > 0, i
    assert requests == [reports[name].as_uri()]  # nothing but the file itself
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.close()


@pytest.fixture
def ui_daemon(
    tmp_path: Path, http: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Daemon]:
    monkeypatch.setenv("LEADRULES_ADMIN_TOKEN", TOKEN)
    running = Daemon(tmp_path, f"sqlite:///{tmp_path}/leadrules.db", http.url)
    running.prepare()
    running.start()
    yield running
    running.stop()


def test_dashboard_shows_the_explanation(chromium: Any, ui_daemon: Daemon) -> None:
    assert ui_daemon.post("/v1/batch", {"batch": history(datetime.now(UTC))}).status_code == 200
    ui_daemon.settle()
    refused = chromium.new_context()
    assert refused.request.get(f"{ui_daemon.url}/ui").status == 401
    refused.close()
    context = chromium.new_context(
        http_credentials={"username": "admin", "password": TOKEN},
        viewport={"width": 1200, "height": 900},
    )
    page = context.new_page()
    assert page.goto(f"{ui_daemon.url}/ui").status == 200
    assert "mql" in page.locator("#funnel").inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    page.locator("#open-mqls a", has_text="u-ann").click()
    page.wait_for_selector("#reasons")
    assert page.locator("#prospect").inner_text() == "u-ann"
    reasons = page.locator("#reasons").inner_text()
    assert "demo-requested" in reasons and "senior-title" in reasons
    assert "Video Watched: How Globex answers in minutes" in page.locator("#timeline").inner_text()
    page.fill("input[name=id]", "anon-ann")
    page.click("nav button")
    page.wait_for_selector("#prospect")
    assert page.locator("#prospect").inner_text() == "u-ann"
    page.screenshot(path=str(ARTIFACTS / "dashboard-prospect.png"), full_page=True)
    context.close()


def test_shadow_page_shows_would_have_decisions(
    chromium: Any, tmp_path: Path, http: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon whose candidate alerts after 2 pricing visits (live: 3): the shadow page,
    reached from the dashboard's menu, counts and lists what it would have decided."""
    monkeypatch.setenv("LEADRULES_ADMIN_TOKEN", TOKEN)
    running = shadowed(tmp_path, f"sqlite:///{tmp_path}/leadrules.db", http.url)
    running.start()
    try:
        assert running.post("/v1/batch", {"batch": messages(datetime.now(UTC))}).status_code == 200
        running.settle()
        context = chromium.new_context(
            http_credentials={"username": "admin", "password": TOKEN},
            viewport={"width": 1200, "height": 900},
        )
        page = context.new_page()
        assert page.goto(f"{running.url}/ui").status == 200
        page.click("nav a[href='/ui/shadow']")
        for _ in range(100):  # the shadow records within a second or two of the events
            if "pricing-page-3x" in page.locator("body").inner_text():
                break
            page.wait_for_timeout(200)
            page.reload()
        counts = page.locator("#shadow-counts").inner_text()
        assert "would have" in counts and "live only" in counts
        would_have = page.locator("#would-have").inner_text()
        assert "pricing-page-3x" in would_have and "roi-calculator" in would_have
        assert "none" in page.locator("#live-only").inner_text()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-shadow.png"), full_page=True)
        page.locator("#would-have a", has_text="u-pat").first.click()
        page.wait_for_selector("#prospect")
        assert page.locator("#prospect").inner_text() == "u-pat"
        context.close()
    finally:
        running.stop()
