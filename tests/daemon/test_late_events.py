"""Late events live: a late event's timestamp still places it in the right windows, and
`replay --order received` of the exported log reproduces the daemon's decisions exactly."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from leadrules.engine.clock import SimulatedClock
from leadrules.engine.daemon.service import Service
from leadrules.engine.daemon.store import (
    AliasRow,
    DecisionRow,
    EventRow,
    ProspectRow,
    SetAsideRow,
    Store,
    TimerRow,
)
from leadrules.engine.language.loader import load_rules
from leadrules.engine.replay.dry_run import replay
from leadrules.engine.replay.sources import EventFile
from leadrules.engine.timefmt import US_PER_S, format_iso, parse_timestamp

ROOT = Path(__file__).resolve().parents[2]
NOW = parse_timestamp("2026-05-10T12:00:00Z")
DAY, HOUR = 86_400 * US_PER_S, 3_600 * US_PER_S


def rules() -> Any:
    return load_rules(ROOT / "rules", ROOT / "config")[0]


def page(who: str, at: int, path: str, n: int) -> dict[str, Any]:
    return {
        "type": "page",
        "userId": who,
        "properties": {"path": path},
        "timestamp": format_iso(at),
        "messageId": f"m-{n}",
    }


def received_order(service: Service, tmp_path: Path, until: int) -> list[dict[str, Any]]:
    log = tmp_path / "log.jsonl"
    with log.open("wb") as out:
        service.export(out)
    again = io.BytesIO()
    replay([EventFile(str(log))], rules(), again, until=until, order="received")
    return [json.loads(x) for x in again.getvalue().splitlines()]


def test_a_late_view_that_completes_the_window_alerts_sales_at_processing_time(
    store: Store, tmp_path: Path
) -> None:
    clock = SimulatedClock(NOW)
    service = Service(store, rules(), clock)
    for n, at in enumerate((NOW, NOW - 2 * DAY, NOW - DAY)):  # the order they arrive in
        clock.advance_to(NOW + n * 60 * US_PER_S)
        service.ingest([page("u-late", at, "/pricing", n)])
        service.process_pending()
    alerts = [r for r in service.decisions() if r["rule"] == "pricing-page-3x"]
    assert [(r["action"], r["at"]) for r in alerts] == [
        ("notify", "2026-05-10T12:00:00Z"),  # the prospect's latest time, not the late view's
        ("start_sequence", "2026-05-10T12:00:00Z"),
    ]
    # Three views in 7 days: 30 points (limit 3 per 7d), all counted.
    assert alerts[0]["score"] == 30

    # The exported log carries receive times; in received order the replay says the same.
    exported = tmp_path / "log.jsonl"
    with exported.open("wb") as out:
        service.export(out)
    first = json.loads(exported.read_text().splitlines()[0])
    assert first["receivedAt"] == format_iso(NOW)
    until = NOW + 60 * US_PER_S * 2
    service.tick(until)
    args = ["replay", str(exported), "--rules", str(ROOT / "rules")]
    args += ["--config", str(ROOT / "config"), "--order", "received"]
    args += ["--until", format_iso(until), "--quiet"]
    done = subprocess.run(
        [sys.executable, "-m", "leadrules.engine.cli", *args],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert [json.loads(x) for x in done.stdout.splitlines()] == service.decisions()
    # In timestamp order it is "what the rules would have done": the same alert, at the
    # time of the third view in time order (the newest one).
    by_time = io.BytesIO()
    replay([EventFile(str(exported))], rules(), by_time, until=until)
    timed = [json.loads(x) for x in by_time.getvalue().splitlines()]
    assert [(r["rule"], r["at"]) for r in timed if r["rule"] == "pricing-page-3x"] == [
        ("pricing-page-3x", "2026-05-10T12:00:00Z")
    ] * 2


def test_a_late_view_counts_within_the_limit_windows_it_falls_in(store: Store) -> None:
    """`pricing-visit` gives 10 points at most 3 times in any 7 days. Views at now, now-1d,
    now-2d, then a late one at now-3d: every 7-day window holding now-3d already holds 3
    awards, so it earns nothing; one 10 days late lies in none of them and earns 10."""
    clock = SimulatedClock(NOW)
    service = Service(store, rules(), clock)
    times = [NOW - 2 * DAY, NOW - DAY, NOW, NOW - 3 * DAY, NOW - 10 * DAY]
    for n, at in enumerate(times):
        clock.advance_to(NOW + n * US_PER_S)
        service.ingest([page("u-limit", at, "/pricing/plans", n)])
        service.process_pending()
    with store.session() as session:
        row = session.get(ProspectRow, "u-limit")
    assert row is not None
    ledger = json.loads(row.state)["ledger"]
    awarded = sorted(entry["at"] if isinstance(entry, dict) else entry[2] for entry in ledger)
    assert awarded == sorted([NOW - 10 * DAY, NOW - 2 * DAY, NOW - DAY, NOW])


def test_a_late_unless_event_cancels_the_pending_absence_check(store: Store) -> None:
    clock = SimulatedClock(NOW)
    service = Service(store, rules(), clock)
    guide = {
        "type": "track",
        "userId": "u-guide",
        "event": "Guide Downloaded",
        "timestamp": format_iso(NOW),
        "messageId": "g",
    }
    later = page("u-guide", NOW + 5 * DAY, "/blog", 1)
    late = page("u-guide", NOW + 2 * DAY, "/docs", 2)  # arrives after the later one
    for n, message in enumerate((guide, later, late)):
        clock.advance_to(NOW + 6 * DAY + n * US_PER_S)
        service.ingest([message])
        service.process_pending()
    service.tick(NOW + 40 * DAY)
    assert [r["rule"] for r in service.decisions()] == []  # no re-engagement: it came back


# -- live == replay --order received, on random streams with bounded lateness ---------------

PATHS = ["/pricing", "/pricing/plans", "/blog/x", "/case-studies/acme", "/demo"]
TRACKS = [
    "Demo Requested",
    "Guide Downloaded",
    "Email Replied",
    "Lead Accepted",
    "Webinar Attended",
]


@st.composite
def streams(draw: st.DrawFn) -> list[tuple[int, list[dict[str, Any]]]]:
    """Requests `(receive time, messages)`: each message's timestamp is its receive time
    less a lateness of up to 3 days; receive times grow by minutes to days."""
    n = draw(st.integers(min_value=1, max_value=30))
    received = NOW
    requests: list[tuple[int, list[dict[str, Any]]]] = []
    count = 0
    for _ in range(n):
        received += (
            draw(st.sampled_from([0, 60, 3_600, 4 * 3_600, DAY // US_PER_S, 3 * DAY // US_PER_S]))
            * US_PER_S
        )
        batch = []
        for _ in range(draw(st.integers(min_value=1, max_value=4))):
            count += 1
            who = draw(st.sampled_from(["u-1", "u-2", "u-3"]))
            late = draw(st.sampled_from([0, 0, 0, HOUR, DAY, 2 * DAY, 3 * DAY]))
            at = received - late
            if draw(st.booleans()):
                message = page(who, at, draw(st.sampled_from(PATHS)), count)
            else:
                message = {
                    "type": "track",
                    "userId": who,
                    "event": draw(st.sampled_from(TRACKS)),
                    "timestamp": format_iso(at),
                    "messageId": f"m-{count}",
                }
            batch.append(message)
        requests.append((received, batch))
    return requests


def _empty(store: Store) -> None:
    with store.session() as session:
        for table in (EventRow, ProspectRow, AliasRow, TimerRow, DecisionRow, SetAsideRow):
            session.execute(delete(table))
        session.commit()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    requests=streams(),
    sweeps=st.lists(st.sampled_from([None, 0.0, 0.5, 1.0]), min_size=30, max_size=30),
)
def test_live_decisions_equal_a_replay_in_received_order(
    store: Store,
    tmp_path: Path,
    requests: list[tuple[int, list[dict[str, Any]]]],
    sweeps: list[float | None],
) -> None:
    """Between requests the timer sweep may run (at a point between two receipts, or not
    at all); it evaluates what was received before it first."""
    _empty(store)
    clock = SimulatedClock(NOW)
    service = Service(store, rules(), clock)
    previous = NOW
    for (received, batch), sweep in zip(requests, sweeps, strict=False):
        if sweep is not None:
            clock.advance_to(previous + int((received - previous) * sweep))
            service.tick()
        clock.advance_to(received)
        service.ingest(batch)
        if sweep != 1.0:
            service.process_pending()
        previous = received
    until = requests[-1][0] + 10 * DAY
    service.tick(until)
    live = service.decisions()
    assert received_order(service, tmp_path, until) == live
