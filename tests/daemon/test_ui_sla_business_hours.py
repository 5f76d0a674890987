"""`/ui`'s open MQLs show the SLA deadline the breach timer has: with
`sla.business_hours`, counted in working hours (docs/rules.md, "Lifecycle")."""

from __future__ import annotations

from pathlib import Path

from leadrules.engine.clock import SimulatedClock
from leadrules.engine.daemon import ui_data
from leadrules.engine.daemon.service import Service
from leadrules.engine.daemon.store import Store
from leadrules.engine.language.loader import load_rules
from leadrules.engine.timefmt import parse_timestamp
from tests.core.test_sla_business_hours import FRIDAY_4PM_BERLIN, MONDAY_NOON_BERLIN, RULES
from tests.scenario import track, write_rules


def test_open_mqls_show_the_business_hours_deadline(tmp_path: Path) -> None:
    rules_dir, config_dir = write_rules(tmp_path, RULES)
    rules, _ = load_rules(rules_dir, config_dir, references="warn")
    store = Store(f"sqlite:///{tmp_path}/leadrules.db")
    store.migrate()
    clock = SimulatedClock(parse_timestamp(FRIDAY_4PM_BERLIN))
    service = Service(store, rules, clock)
    service.ingest([track("u1", FRIDAY_4PM_BERLIN, "Demo Requested")])
    service.process_pending()
    [timer] = [t for t in service.pending_timers() if t.kind == "sla"]
    assert timer.due == parse_timestamp(MONDAY_NOON_BERLIN)
    with store.session() as session:
        [mql] = ui_data.open_mqls(session, rules, clock.now_us())
    store.dispose()
    assert mql["deadline"] == MONDAY_NOON_BERLIN
    assert mql["minutes_left"] == (timer.due - clock.now_us()) // 60_000_000
