"""docs/tracking.md shows the set-ups the tests run: each block marked `copied from PATH`
must still be a verbatim run of lines of that file."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKED = re.compile(r"<!-- copied from (\S+) -->\n```\w*\n(.*?)\n```", re.S)


def copies() -> list[tuple[str, str]]:
    return MARKED.findall((ROOT / "docs" / "tracking.md").read_text())


def contains(source: str, block: str) -> bool:
    lines, wanted = source.splitlines(), textwrap.dedent(block).splitlines()
    return any(
        textwrap.dedent("\n".join(lines[i : i + len(wanted)])).splitlines() == wanted
        for i in range(len(lines) - len(wanted) + 1)
    )


def test_every_snippet_is_copied_from_a_file_the_tests_run() -> None:
    found = copies()
    assert {path for path, _ in found} >= {
        "tests/browser/src/segment.js",
        "tests/browser/src/rudderstack.js",
        "tests/browser/site.html",
        "tests/browser/server-client.mjs",
        "tests/daemon/test_daemon.py",
        "tests/daemon/segment-webhook.yaml",
    }
    stale = [path for path, block in found if not contains((ROOT / path).read_text(), block)]
    assert stale == [], f"docs/tracking.md no longer matches {stale}"


def test_whole_files_are_shown_whole() -> None:
    for path, block in copies():
        if path.startswith("tests/browser/") or path.endswith(".yaml"):
            assert block == (ROOT / path).read_text().rstrip("\n"), path
