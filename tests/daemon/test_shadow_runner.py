"""The daemon's shadow rule set in process (`daemon.shadow.ShadowRunner`) over a real
database (SQLite and PostgreSQL): it reads the event log in the order received with its own
state, records what it would have decided in `shadow_decision` and never in the outbox,
resumes after a restart without recording anything twice, and reloads as live does."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from leadrules.engine.clock import SimulatedClock
from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.core.shadow_diff import compare
from leadrules.engine.daemon import shadow_store
from leadrules.engine.daemon.service import Service
from leadrules.engine.daemon.shadow import CursorMoved, ShadowRunner
from leadrules.engine.daemon.shadow_loop import ShadowLoop
from leadrules.engine.daemon.store import Store
from leadrules.engine.language.loader import load_rules
from leadrules.engine.timefmt import US_PER_S, parse_timestamp

ROOT = Path(__file__).resolve().parents[2]
DAY = 86_400 * US_PER_S


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(database_url)
    s.migrate()
    yield s
    s.dispose()


def live_rules() -> RuleSet:
    return load_rules(ROOT / "rules", ROOT / "config")[0]


def candidate(tmp_path: Path, times: int = 2) -> RuleSet:
    """The example rules with the pricing trigger needing `times` visits instead of 3."""
    directory = tmp_path / f"candidate-{times}"
    shutil.copytree(ROOT / "rules", directory)
    triggers = directory / "triggers.yaml"
    triggers.write_text(triggers.read_text().replace("times: 3", f"times: {times}", 1))
    return load_rules(directory, ROOT / "config")[0]


def examples() -> list[dict[str, Any]]:
    lines = (ROOT / "examples" / "events.jsonl").read_text().splitlines()
    return sorted((orjson.loads(x) for x in lines if x.strip()), key=lambda m: m["timestamp"])


def visit(day: int) -> dict[str, Any]:
    return {
        "type": "page",
        "userId": "u-shadow",
        "timestamp": f"2026-03-0{day}T10:00:00Z",
        "messageId": f"visit-{day}",
        "properties": {"path": "/pricing"},
    }


def notified(records: list[dict[str, Any]]) -> int:
    """How many pricing alerts to sales the records hold."""
    return sum(r["action"] == "notify" and r["rule"] == "pricing-page-3x" for r in records)


class Live:
    """A live Service on a simulated clock: messages arrive in requests, each evaluated and
    followed by a tick, as the daemon does."""

    def __init__(self, store: Store, rules: RuleSet, start: str) -> None:
        self.clock = SimulatedClock(parse_timestamp(start))
        self.service = Service(store, rules, self.clock)

    def receive(self, messages: list[dict[str, Any]]) -> None:
        self.clock.advance_to(max(parse_timestamp(m["timestamp"]) for m in messages))
        self.service.ingest(messages)
        self.service.process_pending()
        self.service.tick()

    def wait(self, us: int) -> None:
        self.clock.advance_to(self.clock.now_us() + us)
        self.service.tick()

    @property
    def horizon(self) -> int | None:
        return self.service.ticked_through


def test_a_shadow_with_the_live_rules_records_exactly_what_live_decided(store: Store) -> None:
    messages = examples()
    live = Live(store, live_rules(), messages[0]["timestamp"])
    shadow = ShadowRunner(store, live_rules(), live.clock, batch=7)
    for i in range(0, len(messages), 4):
        live.receive(messages[i : i + 4])
        shadow.step(live.horizon)
    live.wait(60 * DAY)  # sequence waits, SLA breaches, absence checks
    shadow.step(live.horizon)
    records = shadow_store.shadow_records(store)
    assert len(records) > 20
    assert any(r["rule"].startswith("sequence:") for r in records)  # timer decisions too
    assert records == shadow_store.live_records(store)


def test_a_candidate_records_would_have_decisions_and_the_outbox_holds_only_live(
    store: Store, tmp_path: Path
) -> None:
    live = Live(store, live_rules(), "2026-03-01T00:00:00Z")
    shadow = ShadowRunner(store, candidate(tmp_path), live.clock)
    live.receive([visit(1)])
    live.receive([visit(2)])
    assert shadow.step(live.horizon) >= 3
    would = shadow_store.shadow_records(store)
    assert [r["action"] for r in would[:2]] == ["notify", "start_sequence"]
    assert {r["rule"] for r in would} == {"pricing-page-3x", "sequence:roi-calculator"}
    assert all(r["rule"] != "pricing-page-3x" for r in shadow_store.live_records(store))
    diff = compare(shadow_store.live_records(store), would)
    assert diff.would_have == would and diff.live_only == []


def test_a_restarted_shadow_rebuilds_its_state_and_records_nothing_twice(
    store: Store, tmp_path: Path
) -> None:
    live = Live(store, live_rules(), "2026-03-01T00:00:00Z")
    rules = candidate(tmp_path)
    first = ShadowRunner(store, rules, live.clock)
    live.receive([visit(1)])
    assert first.step(live.horizon) == 0  # one visit: nothing yet
    # A new process: the first visit is only in the log; the second completes the count.
    again = ShadowRunner(store, rules, live.clock)
    live.receive([visit(2)])
    assert again.step(live.horizon) >= 3
    live.wait(30 * DAY)
    again.step(live.horizon)
    records = shadow_store.shadow_records(store)
    assert notified(records) == 1
    # Restarting once more records nothing: everything is behind the cursor.
    assert ShadowRunner(store, rules, live.clock).step(live.horizon) == 0
    assert shadow_store.shadow_records(store) == records
    # What it recorded is what one uninterrupted shadow records over the same log.
    with store.session() as session:
        session.exec(shadow_store.ShadowDecisionRow.__table__.delete())  # type: ignore[call-overload]
        session.exec(shadow_store.ShadowCursorRow.__table__.delete())  # type: ignore[call-overload]
        session.commit()
    ShadowRunner(store, rules, live.clock).step(live.horizon)
    assert shadow_store.shadow_records(store) == records


def test_a_second_writer_finds_the_cursor_moved_and_rebuilds(store: Store) -> None:
    messages = examples()
    live = Live(store, live_rules(), messages[0]["timestamp"])
    one = ShadowRunner(store, live_rules(), live.clock)
    two = ShadowRunner(store, live_rules(), live.clock)
    live.receive(messages[:10])
    one.step(live.horizon)
    two.step(live.horizon)  # resumes from one's cursor: records nothing
    live.receive(messages[10:])
    one.step(live.horizon)
    live.receive([visit(5)])
    with pytest.raises(CursorMoved):
        two.step(live.horizon)  # its generation is stale
    two.step(live.horizon)  # rebuilt from the log, then goes on
    with pytest.raises(CursorMoved):
        one.step(live.horizon)  # now `one` is the stale one
    assert one.step(live.horizon) == 0  # rebuilt: what `two` recorded is not recorded again
    records = shadow_store.shadow_records(store)
    assert records == shadow_store.live_records(store)  # each decision once, as live


def test_the_shadow_reloads_as_live_does_keeping_its_state(store: Store, tmp_path: Path) -> None:
    live = Live(store, live_rules(), "2026-03-01T00:00:00Z")
    shadow = ShadowRunner(store, live_rules(), live.clock)
    live.receive([visit(1)])
    live.receive([visit(2)])
    shadow.step(live.horizon)
    # Both reload the same candidate: the two visits already counted make the third fire
    # under `times: 2` as well as under 3, for live and shadow alike.
    edited = candidate(tmp_path, times=4)
    live.service.swap_rules(edited)
    shadow.swap_rules(edited)
    live.receive([visit(3)])
    live.receive([visit(4)])
    shadow.step(live.horizon)
    records = shadow_store.shadow_records(store)
    assert notified(records) == 1
    assert records == shadow_store.live_records(store)
    assert shadow_store.position(store).rules_version == edited.version  # type: ignore[union-attr]


def test_daemons_sharing_a_database_run_one_shadow_between_them(
    store: Store, database_url: str
) -> None:
    messages = examples()
    live = Live(store, live_rules(), messages[0]["timestamp"])
    other_store = Store(database_url)  # another daemon: its own engine and connections
    one = ShadowLoop(store, live.clock, ROOT / "rules", ROOT / "config", lambda: live.horizon)
    two = ShadowLoop(other_store, live.clock, ROOT / "rules", ROOT / "config", lambda: live.horizon)
    try:
        live.receive(messages[:10])
        assert one.step() > 0
        waiting = two.step()
        if store.dialect == "postgresql":
            assert waiting == 0 and two.runner is not None and two.runner.generation is None
            one.stop()  # the first daemon goes: the second takes over from its cursor
        live.receive(messages[10:])
        assert two.step() > 0
        assert shadow_store.shadow_records(store) == shadow_store.live_records(store)
    finally:
        one.stop()
        two.stop()
        other_store.dispose()
