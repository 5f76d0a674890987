"""The website's own tracker reaches leadrules: analytics.js (Segment's analytics-next) and
RudderStack's JavaScript SDK, bundled from npm, in Debian's chromium, on a page served from
another origin than the daemon. Each identifies a prospect, views /pricing three times and
tracks an event; each event is stored once and the pricing alert is delivered — also when
the views arrive out of timestamp order, as a browser's parallel requests can."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.browser.site import Site, website
from tests.browser.traffic import Traffic
from tests.daemon.harness import KEY, Daemon
from tests.daemon.ingest_daemon import stored_messages, wait_for_alert
from tests.receivers import HttpReceiver

pytestmark = [pytest.mark.browser, pytest.mark.integration]

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Tracker:
    name: str
    bundle: str  # file built by build.mjs from src/
    js: str  # the page's global
    page_with_time: str  # a page view at epoch milliseconds `ms` (JS expression)

    def settings(self, daemon: Daemon, **extra: Any) -> dict[str, Any]:
        if self.bundle == "segment.js":
            return {
                "writeKey": KEY,
                "apiHost": f"127.0.0.1:{daemon.port}/v1",
                "protocol": "http",
                **extra,
            }
        return {"writeKey": KEY, "dataPlaneUrl": daemon.url, **extra}


SEGMENT = Tracker(
    "analytics-next",
    "segment.js",
    "analytics",
    "analytics.page(undefined, undefined, {}, {timestamp: new Date(ms)})",
)
RUDDERSTACK = Tracker(
    "rudderstack-js",
    "rudderstack.js",
    "rudderanalytics",
    "rudderanalytics.page({}, {originalTimestamp: new Date(ms).toISOString()})",
)


@dataclass
class Visit:
    """One browser tab on the website, with its network traffic recorded."""

    site: Site
    page: Any
    traffic: Traffic
    daemon: Daemon
    tracker: Tracker

    def open(self, path: str) -> None:
        self.page.goto(self.site.url + path)
        self.page.wait_for_function(f"() => window.{self.tracker.js} !== undefined")

    def call(self, expression: str) -> None:
        self.page.evaluate(f"() => {{ {expression}; }}")

    def wait_stored(self, user: str, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        """The prospect's stored messages once there are `count` of them."""
        deadline = time.monotonic() + timeout
        while True:
            mine = [m for m in stored_messages(self.daemon) if m.get("userId") == user]
            if len(mine) >= count or time.monotonic() > deadline:
                return mine
            self.traffic.pump(100)


@pytest.fixture
def visit(
    request: pytest.FixtureRequest, chromium: Any, bundles: Path, daemon: Daemon
) -> Iterator[Visit]:
    tracker, extra = request.param
    with website(bundles / tracker.bundle, tracker.settings(daemon, **extra)) as site:
        context = chromium.new_context()
        page = context.new_page()
        traffic = Traffic(context, page)
        yield Visit(site, page, traffic, daemon, tracker)
        context.close()


def identify(visit: Visit, user: str) -> None:
    visit.call(
        f"{visit.tracker.js}.identify('{user}', "
        "{name: 'Sam Lee', email: 'sam@example.com', title: 'VP Sales', company: {size: 900}})"
    )


def check(visit: Visit, user: str, hook: HttpReceiver, name: str) -> list[dict[str, Any]]:
    """Stored once each, no write key stored, the alert delivered, nothing fetched from a
    vendor, every request to the daemon answered and readable by the page."""
    stored = visit.wait_stored(user, 5)
    daemon_url = visit.daemon.url
    visit.traffic.settle(daemon_url)
    report = visit.traffic.report(name, daemon_url)
    kinds = [
        (m["type"], m.get("properties", {}).get("path") if m["type"] == "page" else None)
        for m in stored
    ]
    assert sorted(kinds, key=str) == sorted(
        [
            ("identify", None),
            ("page", "/pricing"),
            ("page", "/pricing"),
            ("page", "/pricing"),
            ("track", None),
        ],
        key=str,
    ), report
    assert len({m["messageId"] for m in stored}) == 5
    assert not [m for m in stored if "writeKey" in m], "a write key was stored"
    assert visit.traffic.foreign(visit.site.url, daemon_url) == [], report
    posts = [e for e in visit.traffic.to(daemon_url) if e.method == "POST"]
    assert posts and all(e.status == 200 for e in posts), report
    if visit.tracker is SEGMENT:  # it sends the key in every message: the daemon drops it
        assert all('"writeKey"' in e.body for e in posts), report
    assert all(e.answer.get("access-control-allow-origin") == "*" for e in posts), report
    preflights = [e for e in visit.traffic.to(daemon_url) if e.method == "OPTIONS"]
    assert preflights and all(e.status == 204 for e in preflights), report
    alert = wait_for_alert(hook, user)
    assert alert["record"]["rule"] == "pricing-page-3x"
    assert "Sam Lee" in json.dumps(alert)
    return stored


BOTH = [
    pytest.param((SEGMENT, {}), id="analytics-next"),
    pytest.param((RUDDERSTACK, {}), id="rudderstack"),
]


@pytest.mark.parametrize("visit", BOTH, indirect=True)
def test_three_pricing_views_in_a_browser_raise_the_alert(visit: Visit, hook: HttpReceiver) -> None:
    user = f"{visit.tracker.name}-in-order"
    visit.open("/pricing")
    identify(visit, user)
    visit.wait_stored(user, 1)
    for view in range(3):
        if view:
            visit.open("/pricing")  # a new page load: the tracker keeps the user
        visit.call(f"{visit.tracker.js}.page()")
        visit.wait_stored(user, 2 + view)
    visit.call(f"{visit.tracker.js}.track('Pricing Calculator Used', {{plan: 'team'}})")
    check(visit, user, hook, f"{visit.tracker.name}-in-order")


@pytest.mark.parametrize("visit", BOTH, indirect=True)
def test_pricing_views_out_of_timestamp_order_still_raise_the_alert(
    visit: Visit, hook: HttpReceiver
) -> None:
    user = f"{visit.tracker.name}-out-of-order"
    visit.open("/pricing")
    identify(visit, user)
    visit.wait_stored(user, 1)
    now = int(time.time() * 1000)
    for n, offset in enumerate((0, 2 * DAY_MS, 1 * DAY_MS)):  # now, two days ago, yesterday
        visit.call(f"const ms = {now - offset}; {visit.tracker.page_with_time}")
        # each stored before the next is sent: a tracker that sends its requests side by side
        # could otherwise have them arrive in any order (sorted, by chance, one time in six)
        visit.wait_stored(user, 2 + n)
    visit.call(f"{visit.tracker.js}.track('Pricing Calculator Used', {{plan: 'team'}})")
    stored = check(visit, user, hook, f"{visit.tracker.name}-out-of-order")
    views = [m for m in stored if m["type"] == "page"]
    stamps = [m.get("timestamp") or m.get("originalTimestamp") for m in views]
    assert stamps != sorted(stamps), f"the views arrived in order: {stamps}"


@pytest.mark.parametrize(
    "visit",
    [pytest.param((SEGMENT, {"batching": True}), id="analytics-next-batching")],
    indirect=True,
)
def test_analytics_next_batching_posts_to_v1_b(visit: Visit, hook: HttpReceiver) -> None:
    user = "analytics-next-batching"
    visit.open("/pricing")
    identify(visit, user)
    now = int(time.time() * 1000)
    for offset in (0, 2 * DAY_MS, 1 * DAY_MS):
        visit.call(f"const ms = {now - offset}; {visit.tracker.page_with_time}")
    visit.call("analytics.track('Pricing Calculator Used', {plan: 'team'})")
    check(visit, user, hook, "analytics-next-batching")
    paths = {e.path for e in visit.traffic.to(visit.daemon.url) if e.method == "POST"}
    assert paths == {"/v1/b"}
