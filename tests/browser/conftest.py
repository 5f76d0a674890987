"""Fixtures for the real-browser tests: Debian's chromium driven by Playwright, the trackers
bundled from node_modules, a real daemon. In CI a missing piece fails; locally it skips."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.harness import Daemon
from tests.receivers import HttpReceiver, http_receiver

HERE = Path(__file__).resolve().parent
CHROMIUM = Path("/usr/bin/chromium")
# Everything the browser could do on its own on the network is switched off: the only
# requests are the page's.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def missing(*, browser: bool) -> str | None:
    """What is not installed, in words, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (HERE / "node_modules" / "@segment" / "analytics-next").is_dir():
        return "tests/browser/node_modules is missing: run npm ci in tests/browser"
    if browser:
        if not CHROMIUM.exists():
            return "Debian's chromium is missing: apt-get install chromium"
        try:
            import playwright  # noqa: F401
        except ImportError:
            return "the Python package playwright is missing: pip install -e '.[dev]'"
    return None


def require(*, browser: bool) -> None:
    reason = missing(browser=browser)
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (.ci/run installs it)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trackers bundled by tests/browser/build.mjs (esbuild) into a fresh directory."""
    require(browser=True)
    out = tmp_path_factory.mktemp("bundles")
    subprocess.run(["node", "build.mjs", str(out)], cwd=HERE, check=True, timeout=120)
    return out


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    require(browser=True)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, HttpReceiver]]:
    """`leadrules run` with the example rules, shared by a module's tests (each uses its own
    prospect); every channel posts to the receiver beside it."""
    receivers = http_receiver()
    hook = next(receivers)
    root = tmp_path_factory.mktemp("daemon")
    running = Daemon(root, f"sqlite:///{root}/leadrules.db", hook.url)
    running.prepare()
    running.start()
    yield running, hook
    running.stop()
    receivers.close()


@pytest.fixture(scope="module")
def daemon(tracking: tuple[Daemon, HttpReceiver]) -> Daemon:
    return tracking[0]


@pytest.fixture(scope="module")
def hook(tracking: tuple[Daemon, HttpReceiver]) -> HttpReceiver:
    return tracking[1]
