"""`leadrules replay --order received`: the daemon's order (receivedAt), against the default
timestamp order ("what would the rules have done")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from leadrules.engine.timefmt import US_PER_S, format_iso, parse_timestamp

ROOT = Path(__file__).resolve().parents[2]
T0 = parse_timestamp("2026-03-01T09:00:00Z")
DAY = 86_400 * US_PER_S


def message(kind: str, at: int, received: int | None, n: int, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "userId": "u-1", "timestamp": format_iso(at)}
    out["messageId"] = f"m-{n}"
    if received is not None:
        out["receivedAt"] = format_iso(received)
    return out | fields


def run(tmp_path: Path, lines: list[Any], *extra: str) -> tuple[int, list[dict[str, Any]], str]:
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    options = ["--rules", str(ROOT / "rules"), "--config", str(ROOT / "config"), "--quiet"]
    done = subprocess.run(
        [sys.executable, "-m", "leadrules.engine.cli", "replay", str(log), *options, *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, [json.loads(x) for x in done.stdout.splitlines()], done.stderr


def late_unless_log() -> list[dict[str, Any]]:
    """A guide download, a visit 40 days later, and a visit 10 days after the download that
    reached the daemon only after the later one."""
    return [
        message("track", T0, T0, 1, event="Guide Downloaded"),
        message("page", T0 + 40 * DAY, T0 + 40 * DAY, 2, properties={"path": "/blog"}),
        message("page", T0 + 10 * DAY, T0 + 40 * DAY + 1, 3, properties={"path": "/docs"}),
    ]


def test_the_two_orders_differ_where_a_timer_fired_before_a_late_event_arrived(
    tmp_path: Path,
) -> None:
    code, by_time, _ = run(tmp_path, late_unless_log())
    assert code == 0
    assert by_time == []  # the visit on day 10 cancels the absence check: no re-engagement

    code, received, _ = run(tmp_path, late_unless_log(), "--order", "received")
    assert code == 0
    # The daemon's clock passed day 30 before the day-10 visit arrived: the check fired.
    assert [(r["action"], r["rule"], r["at"]) for r in received] == [
        ("start_sequence", "guide-then-silence", "2026-03-31T09:00:00Z"),
        ("send", "sequence:re-engagement", "2026-03-31T09:00:00Z"),
        ("send", "sequence:re-engagement", "2026-04-07T09:00:00Z"),  # the last step
    ]


def test_received_order_follows_receivedat_then_the_file_and_defaults_to_the_timestamp(
    tmp_path: Path,
) -> None:
    views = [
        # received last although first in the file
        message("page", T0, T0 + 2 * DAY, 1, properties={"path": "/pricing"}),
        # no receivedAt: received at its timestamp
        message("page", T0 + DAY, None, 2, properties={"path": "/pricing"}),
        message("page", T0 + DAY, T0 + DAY, 3, properties={"path": "/pricing"}),
    ]
    code, records, _ = run(tmp_path, views, "--order", "received")
    assert code == 0
    alert = [r for r in records if r["action"] == "notify"]
    # The third view evaluated is the late one (day 0): decided at the prospect's latest time.
    assert [(r["rule"], r["at"]) for r in alert] == [("pricing-page-3x", "2026-03-02T09:00:00Z")]
    code, by_time, _ = run(tmp_path, views)
    assert [(r["rule"], r["at"]) for r in by_time if r["action"] == "notify"] == [
        ("pricing-page-3x", "2026-03-02T09:00:00Z")
    ]


def test_a_receivedat_that_is_not_a_time_is_a_rejected_line(tmp_path: Path) -> None:
    bad = message("page", T0, None, 1, properties={"path": "/"}) | {"receivedAt": "yesterday"}
    code, _, stderr = run(tmp_path, [bad], "--order", "received")
    assert code == 3
    assert "log.jsonl:1: receivedAt: not ISO 8601: 'yesterday'" in stderr
