"""Poison-safe evaluation: an event or timer whose evaluation raises is set aside (stored
with its error, counted in /metrics, listed by `leadrules quarantine`, retryable) and the
rest goes on; timers of sequences a reload removed are dropped with the reason."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from leadrules.engine.clock import SimulatedClock
from leadrules.engine.core.evaluator import Evaluator
from leadrules.engine.daemon import quarantine
from leadrules.engine.daemon.runtime import Daemon, DaemonOptions
from leadrules.engine.daemon.service import Service
from leadrules.engine.daemon.store import ProspectRow, Store
from leadrules.engine.language.loader import load_rules
from leadrules.engine.timefmt import US_PER_S, format_iso, parse_timestamp

ROOT = Path(__file__).resolve().parents[2]
NOW = parse_timestamp("2026-05-10T12:00:00Z")
DAY = 86_400 * US_PER_S


def rules(root: Path = ROOT) -> Any:
    return load_rules(root / "rules", root / "config")[0]


def pricing(who: str, n: int, at: int) -> dict[str, Any]:
    return {
        "type": "page",
        "userId": who,
        "properties": {"path": "/pricing"},
        "timestamp": format_iso(at),
        "messageId": f"{who}-{n}",
    }


def demo(who: str, at: int, message_id: str | None = None) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": who,
        "event": "Demo Requested",
        "timestamp": format_iso(at),
        "messageId": message_id or f"{who}-demo",
    }


def cli(database_url: str, *args: str) -> str:
    options = ["--database-url", database_url, "--config", str(ROOT / "config")]
    done = subprocess.run(
        [sys.executable, "-m", "leadrules.engine.cli", "quarantine", *args, *options],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def without_roi_sequence(tmp_path: Path) -> Path:
    """A copy of the example rules in which the roi-calculator sequence is gone."""
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    shutil.copytree(ROOT / "config", tmp_path / "config")
    triggers = tmp_path / "rules" / "triggers.yaml"
    triggers.write_text(
        triggers.read_text().replace("      - start_sequence: roi-calculator\n", "")
    )
    sequences = tmp_path / "rules" / "sequences.yaml"
    text = sequences.read_text()
    start = text.index("  roi-calculator:")
    end = text.index("  industry-follow-up:")
    sequences.write_text(text[:start] + text[end:])
    return tmp_path


def test_a_reload_that_removes_a_waiting_sequence_drops_its_timers_with_the_reason(
    store: Store, tmp_path: Path, database_url: str
) -> None:
    clock = SimulatedClock(NOW)
    service = Service(store, rules(), clock)
    service.ingest([pricing("u-wait", n, NOW - n * 3_600 * US_PER_S) for n in range(3)])
    service.process_pending()
    assert [t.kind for t in service.pending_timers()] == ["step"]  # roi-calculator's wait

    service.swap_rules(rules(without_roi_sequence(tmp_path)))
    clock.advance_to(NOW + 3 * DAY)
    service.ingest([demo("u-other", NOW + 3 * DAY)])
    service.tick()  # raised KeyError before: every later event stalled behind it

    assert [r["rule"] for r in service.decisions()][-1] == "demo-request"
    assert service.pending_timers() == []
    assert service.counts()["pending_events"] == 0
    (dropped,) = quarantine.listed(store, (quarantine.OBSOLETE,))
    assert (dropped.kind, dropped.prospect) == ("timer", "u-wait")
    assert dropped.error == "sequence 'roi-calculator' is no longer in the rules"
    with store.session() as session:
        row = session.get(ProspectRow, "u-wait")
    assert row is not None and not json.loads(row.state)["enrolments"]
    # Not poison: nothing is held, nothing to retry.
    assert service.counts()["set_aside"] == 0
    listing = cli(database_url, "list", "--all")
    assert "obsolete  timer u-wait" in listing
    assert "sequence 'roi-calculator' is no longer in the rules" in listing
    assert cli(database_url, "list") == ""


def test_an_event_that_makes_the_evaluator_raise_is_held_and_the_rest_goes_on(
    store: Store, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = SimulatedClock(NOW)
    service = Service(store, rules(), clock)
    seen: list[tuple[str, str]] = []
    service.on_set_aside = lambda kind, status: seen.append((kind, status))
    on_event = Evaluator.on_event

    def failing(self: Evaluator, event: Any) -> Any:
        if event.message_id == "bad":
            raise ZeroDivisionError("the cause")
        return on_event(self, event)

    monkeypatch.setattr(Evaluator, "on_event", failing)
    service.ingest([demo("u-1", NOW), demo("u-2", NOW, "bad"), demo("u-3", NOW)])
    assert service.process_pending() == 3
    assert [r["prospect"] for r in service.decisions()] == ["u-1", "u-3"]
    assert (service.counts()["set_aside"], service.counts()["pending_events"]) == (1, 0)
    assert seen == [("event", "held")]

    listing = cli(database_url, "list")
    assert "held" in listing and "u-2  bad" in listing
    assert "ZeroDivisionError: the cause" in listing
    (held,) = quarantine.listed(store)
    assert "failing" in (held.trace or "")  # the frame that raised
    assert "ZeroDivisionError" in cli(database_url, "list", str(held.id))

    monkeypatch.undo()  # the cause is fixed
    assert "1 held items put back" in cli(database_url, "retry", str(held.id))
    service.process_pending()
    assert [r["prospect"] for r in service.decisions()] == ["u-1", "u-3", "u-2"]
    assert service.counts()["set_aside"] == 0
    assert cli(database_url, "list") == ""


def test_a_timer_that_raises_is_held_and_fires_when_retried(
    store: Store, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = SimulatedClock(NOW)
    service = Service(store, rules(), clock)
    service.ingest([demo("u-mql", NOW), {**demo("u-mql", NOW, "again"), "event": "Email Replied"}])
    service.ingest([pricing("u-mql", n, NOW) for n in range(2)])
    service.ingest([demo("u-fine", NOW)])
    service.process_pending()
    kinds = sorted(t.kind for t in service.pending_timers())
    assert "sla" in kinds
    on_timer = Evaluator.on_timer

    def failing(self: Evaluator, timer: Any) -> Any:
        if timer.kind == "sla":
            raise KeyError("broken breach")
        return on_timer(self, timer)

    monkeypatch.setattr(Evaluator, "on_timer", failing)
    clock.advance_to(NOW + DAY)
    service.ingest([demo("u-next", NOW + DAY)])
    service.tick()
    assert [r["prospect"] for r in service.decisions()][-1] == "u-next"
    (held,) = quarantine.listed(store)
    assert (held.kind, held.prospect, held.due_at) == ("timer", "u-mql", NOW + 4 * 3_600 * US_PER_S)
    assert "sla" not in [t.kind for t in service.pending_timers()]

    monkeypatch.undo()
    assert quarantine.retry(store) == 1
    service.tick()
    breach = [r for r in service.decisions() if r["rule"] == "lifecycle.sla"]
    assert [r["at"] for r in breach] == ["2026-05-10T16:00:00Z"]  # at its due time


def test_metrics_count_what_was_set_aside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    daemon = Daemon(
        DaemonOptions(ROOT / "rules", ROOT / "config", database_url=f"sqlite:///{tmp_path}/d.db"),
        clock=SimulatedClock(NOW),
    )
    try:

        def failing(self: Evaluator, event: Any) -> Any:
            raise RuntimeError("boom")

        monkeypatch.setattr(Evaluator, "on_event", failing)
        daemon.service.ingest([demo("u-1", NOW)])
        daemon.service.process_pending()
        daemon.refresh_gauges()
        text = generate_latest(daemon.metrics.registry).decode()
        assert 'leadrules_set_aside_total{kind="event",status="held"} 1.0' in text
        assert "leadrules_held_items 1.0" in text
    finally:
        daemon.store.dispose()


def test_a_database_error_is_not_poison_the_batch_is_tried_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    service = Service(store, rules(), SimulatedClock(NOW))
    on_event = Evaluator.on_event

    def flaky(self: Evaluator, event: Any) -> Any:
        raise OperationalError("SELECT 1", {}, Exception("connection lost"))

    monkeypatch.setattr(Evaluator, "on_event", flaky)
    service.ingest([demo("u-1", NOW)])
    with pytest.raises(OperationalError):
        service.process_pending()
    assert (service.counts()["pending_events"], service.counts()["set_aside"]) == (1, 0)
    monkeypatch.setattr(Evaluator, "on_event", on_event)
    assert service.process_pending() == 1
    assert [r["prospect"] for r in service.decisions()] == ["u-1"]
