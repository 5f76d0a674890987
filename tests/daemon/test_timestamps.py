"""The timestamp policy at the event door (docs/operations.md, "Event timestamps"): nothing
before 1970 anywhere; at the daemon nothing more than 7 days after receipt; any past time
since 1970 accepted; a replay (no receipt) bounded by 1970 only."""

from __future__ import annotations

import pytest

from leadrules.engine.clock import SimulatedClock
from leadrules.engine.core.events import MAX_AHEAD_US, normalize
from leadrules.engine.daemon.service import Service
from leadrules.engine.daemon.store import Store
from leadrules.engine.errors import EventError
from leadrules.engine.language.loader import load_rules
from leadrules.engine.timefmt import format_iso, parse_timestamp
from tests.daemon.harness import ROOT

NOW = parse_timestamp("2026-06-01T12:00:00Z")
DAY = MAX_AHEAD_US // 7


def _page(ts: str, n: int) -> dict[str, object]:
    return {"type": "page", "userId": "ts", "messageId": f"ts-{n}", "timestamp": ts}


def test_the_daemon_refuses_before_1970_and_more_than_7_days_ahead(tmp_path: object) -> None:
    rules, _ = load_rules(ROOT / "rules", ROOT / "config", references="warn")
    store = Store(f"sqlite:///{tmp_path}/ts.db")
    store.migrate()
    service = Service(store, rules, SimulatedClock(NOW))
    service.refuse_future = True  # as the daemon sets it
    stamps = [
        "1969-12-31T23:59:59Z",  # 0 refused
        "1970-01-01T00:00:00Z",  # 1 accepted: long past is fine
        format_iso(NOW + 6 * DAY),  # 2 accepted
        format_iso(NOW + 7 * DAY + 1_000_000),  # 3 refused
        "9999-12-31T23:59:59Z",  # 4 refused
        "0001-01-01T00:00:00+01:00",  # 5 refused
        "2026-06-01T12:00:00+99:00",  # 6 not a time
    ]
    result = service.ingest([_page(ts, n) for n, ts in enumerate(stamps)])
    assert result.accepted == 2
    errors = {e["index"]: e for e in result.errors}
    assert sorted(errors) == [0, 3, 4, 5, 6]
    assert all(e["field"] == "timestamp" for e in errors.values())
    assert "before 1970" in errors[0]["message"] and "before 1970" in errors[5]["message"]
    assert "more than 7 days after" in errors[3]["message"]
    assert "after 8999-12-31T23:59:59Z" in errors[4]["message"]
    assert "not an ISO 8601 time" in errors[6]["message"]
    store.dispose()


def test_a_replay_has_no_receipt_so_only_the_calendar_bounds_it() -> None:
    assert normalize(_page("8999-12-31T23:59:59Z", 1)).ts > NOW
    with pytest.raises(EventError) as late:
        normalize(_page("9999-12-31T23:59:59Z", 3))
    assert late.value.field == "timestamp"
    with pytest.raises(EventError) as refused:
        normalize(_page("1969-07-20T20:17:00Z", 2))
    assert refused.value.field == "timestamp"


def test_error_messages_stay_short_whatever_the_value() -> None:
    with pytest.raises(EventError) as refused:
        normalize({**_page("x" * 100_000, 3)})
    assert len(str(refused.value)) < 120
    with pytest.raises(EventError) as wrong:
        normalize({**_page("2026-01-01T00:00:00Z", 4), "type": {"deep": [[[]]]}})
    assert wrong.value.field == "type" and "dict" in wrong.value.message
