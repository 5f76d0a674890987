"""A pytest plugin for mutation/run.py: which test executes which line of the mutated modules.

Loaded with `-p coverage_plugin` (mutation/ on PYTHONPATH) when LEADRULES_MUTATION_COVERAGE
names the output file. Lines run at import are recorded under the empty context ""; each test's
lines under its node id. Also records each test's duration, to run the fastest first.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import coverage
import pytest

_OUT = os.environ.get("LEADRULES_MUTATION_COVERAGE")
_cov: coverage.Coverage | None = None
_durations: dict[str, float] = {}

if _OUT:
    _cov = coverage.Coverage(
        data_file=None,
        include=[str(Path.cwd() / "engine" / "*")],
        config_file=False,
    )
    _cov.start()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    if _cov is None:
        yield
        return
    _cov.switch_context(item.nodeid)
    started = time.perf_counter()
    yield
    _durations[item.nodeid] = time.perf_counter() - started
    _cov.switch_context("")


_failed: set[str] = set()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed:
        _failed.add(report.nodeid)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _cov is None or not _OUT:
        return
    _cov.stop()
    data = _cov.get_data()
    lines: dict[str, dict[str, list[str]]] = {}
    for filename in data.measured_files():
        by_line = data.contexts_by_lineno(filename)
        lines[str(Path(filename).resolve())] = {str(n): sorted(c) for n, c in by_line.items()}
    out = {"lines": lines, "durations": _durations, "failed": sorted(_failed)}
    Path(_OUT).write_text(json.dumps(out))
