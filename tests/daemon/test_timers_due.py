"""`Service.timers_due`: whether the work loop has timers to fire after evaluating (it ticks
only then; the sweep ticks every second regardless)."""

from __future__ import annotations

from pathlib import Path

from leadrules.engine.clock import SimulatedClock
from leadrules.engine.daemon.service import Service
from leadrules.engine.daemon.store import Store, TimerRow
from leadrules.engine.language.loader import load_rules

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_800_000_000_000_000


def test_timers_due_is_true_only_for_a_timer_due_by_now(store: Store) -> None:
    service = Service(store, load_rules(ROOT / "rules", ROOT / "config")[0], SimulatedClock(NOW))
    assert not service.timers_due()  # no timers at all
    with store.session() as session:
        session.add(TimerRow(key="later", due_at=NOW + 1, prospect="p", payload="{}"))
        session.commit()
    assert not service.timers_due()  # one, not yet due
    with store.session() as session:
        session.add(TimerRow(key="now", due_at=NOW, prospect="p", payload="{}"))
        session.commit()
    assert service.timers_due()  # due at this very microsecond
