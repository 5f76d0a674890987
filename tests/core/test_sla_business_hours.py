"""SLA clocks may count business hours only (`lifecycle.sla.business_hours`, docs/rules.md,
"Lifecycle"): the breach timer, the deadline templates get (`sla_deadline`) and the one
`/ui` shows are the same moment, counted inside the working hours and days of the zone."""

from __future__ import annotations

from pathlib import Path

from leadrules.engine.core.send_windows import SendWindow, sla_due
from leadrules.engine.timefmt import US_PER_S, parse_timestamp
from tests.core.contract_support import Replayed
from tests.scenario import run, track

RULES = """
    scoring:
      rules:
        - {id: demo, when: {event: Demo Requested}, points: 100}
    lifecycle:
      mql_threshold: 80
      on_mql:
        - notify: {channel: sales, template: new-mql}
      sla:
        accept_within: 4h
        business_hours: {hours: "09:00-17:00", days: [mon, tue, wed, thu, fri], timezone: Europe/Berlin}
        on_breach:
          - notify: {channel: sales-managers, template: late}
    """
HOUR = 3600 * US_PER_S
FRIDAY_4PM_BERLIN = "2026-03-06T15:00:00Z"
MONDAY_NOON_BERLIN = "2026-03-09T11:00:00Z"


def breaches(records: list[dict[str, object]]) -> list[object]:
    return [r["at"] for r in records if r["rule"] == "lifecycle.sla"]


def test_sla_clocks_may_count_business_hours_only_and_templates_get_that_deadline(
    tmp_path: Path,
) -> None:
    events = [track("u1", FRIDAY_4PM_BERLIN, "Demo Requested")]
    replayed = Replayed(tmp_path, RULES, events, until="2026-03-20T00:00:00Z")
    # One hour on Friday, three from Monday 09:00: Monday 12:00 in Berlin.
    assert breaches(replayed.records) == [MONDAY_NOON_BERLIN]
    on_mql, breach = replayed.contexts
    assert on_mql["sla_deadline"] == MONDAY_NOON_BERLIN  # not Friday 20:00
    assert breach["sla_deadline"] == MONDAY_NOON_BERLIN


def test_an_accept_in_business_time_is_in_time_though_days_have_passed(tmp_path: Path) -> None:
    events = [
        track("u1", FRIDAY_4PM_BERLIN, "Demo Requested"),
        track("u1", "2026-03-09T10:59:59Z", "Lead Accepted"),  # Monday 11:59:59 in Berlin
    ]
    assert breaches(run(tmp_path, RULES, events, until="2026-03-20T00:00:00Z")) == []


def test_an_mql_outside_business_hours_starts_its_clock_at_the_next_opening(
    tmp_path: Path,
) -> None:
    events = [track("u1", "2026-03-07T12:00:00Z", "Demo Requested")]  # a Saturday
    records = run(tmp_path, RULES, events, until="2026-03-20T00:00:00Z")
    assert breaches(records) == ["2026-03-09T12:00:00Z"]  # Monday 09:00 + 4h, Berlin


def test_without_business_hours_the_clock_runs_around_the_clock() -> None:
    since = parse_timestamp(FRIDAY_4PM_BERLIN)
    assert sla_due(since, 4 * HOUR, None) == since + 4 * HOUR
    hours = SendWindow(9 * 60, 17 * 60, frozenset(range(5)), "Europe/Berlin")
    assert sla_due(since, 4 * HOUR, hours) == parse_timestamp(MONDAY_NOON_BERLIN)
