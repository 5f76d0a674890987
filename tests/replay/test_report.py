"""`leadrules report`: the agreed funnel metrics on a history written by hand, the forecast
from the rates it reports, and the HTML report's self-containment."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "leadrules.engine.cli", "report"]

RULES = """\
lifecycle:
  mql_threshold: 40
  sla:
    accept_within: 4h
scoring:
  rules:
    - id: demo
      when: {event: Demo Requested}
      points: 50
    - id: pricing
      when: {page: {path: /pricing}}
      points: 5
sequences:
  nurture:
    steps:
      - wait: 1d
      - send: {channel: email, template: t}
    exit_when:
      - event: Email Replied
triggers:
  - id: guide
    when: {event: Guide Downloaded}
    then:
      - start_sequence: nurture
"""


def _e(n: int, who: str, at: str, **fields: object) -> dict[str, object]:
    kind = "page" if "properties" in fields and "event" not in fields else "track"
    return {
        "type": kind,
        "userId": who,
        "timestamp": f"2026-03-{at}Z",
        "messageId": f"m{n}",
        **fields,
    }


EVENTS = [
    # u-1: pricing, a video, a demo (MQL), accepted an hour later, qualified, won.
    _e(1, "u-1", "02T09:00:00", properties={"path": "/pricing"}),
    _e(2, "u-1", "02T09:10:00", event="Video Watched", properties={"title": "Tour"}),
    _e(3, "u-1", "02T10:00:00", event="Demo Requested"),
    _e(4, "u-1", "02T11:00:00", event="Lead Accepted"),
    _e(5, "u-1", "03T10:00:00", event="Lead Qualified"),
    _e(6, "u-1", "10T10:00:00", event="Deal Won"),
    # u-2: an MQL nobody answers (an SLA breach), then rejected a day later.
    _e(7, "u-2", "04T10:00:00", event="Demo Requested"),
    _e(8, "u-2", "05T10:00:00", event="Lead Rejected", properties={"reason": "no-budget"}),
    # u-3: enrolled by a guide, exits the sequence by replying; u-4: an open MQL.
    _e(9, "u-3", "06T10:00:00", event="Guide Downloaded"),
    _e(10, "u-3", "06T12:00:00", event="Email Replied"),
    _e(11, "u-4", "20T10:00:00", event="Demo Requested"),
    _e(12, "u-4", "20T10:30:00", properties={"path": "/blog"}),
]


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    rules = tmp_path / "rules"
    (rules / "templates").mkdir(parents=True)
    (rules / "rules.yaml").write_text(RULES)
    (rules / "templates" / "t.md").write_text("hi {{ prospect }}\n")
    config = tmp_path / "config"
    config.mkdir()
    (config / "channels.yaml").write_text("channels:\n  email: {adapter: console}\n")
    (config / "agreement.yaml").write_text("marketing: {mqls_per_month: 2}\n")
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    return rules, config, events


def _report(rules: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--rules", str(rules), "--config", str(config), *args],
        capture_output=True,
        text=True,
    )


def test_metrics_follow_their_definitions(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    rules, config, events = setup
    done = _report(rules, config, str(events), "--json", str(tmp_path / "r.json"))
    assert done.returncode == 0, done.stderr
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["funnel"] == {"mql": 3, "sal": 1, "sql": 1, "customer": 1, "recycled": 1}
    assert r["lead_response_hours"]["median"] == 1.0
    # u-1 answered in 1 h, u-2 after 24 h (breach), u-4 still open after 30 min: not decided.
    assert (r["sla"]["decided"], r["sla"]["breaches"]) == (2, 1)
    assert r["sla"]["breach_rate"] == 0.5
    assert r["mql_to_sal_rate"] == pytest.approx(1 / 3)
    assert r["mql_to_sql_rate"] == pytest.approx(1 / 3)
    assert r["velocity_days"]["median"] == pytest.approx(8 + 1 / 24)
    assert r["rejections_by_reason"] == {"no-budget": 1}
    assert {c["rule"]: c["mqls"] for c in r["rule_contribution"]} == {"demo": 3, "pricing": 1}
    assert r["sequences"]["nurture"] == {
        "enrolled": 1,
        "exited_by_reply": 1,
        "exited_otherwise": 0,
        "reached_sql": 0,
    }
    influence = r["content_influence"]
    assert influence["first_touch"] == {"page /pricing": 1}
    assert influence["last_touch"] == {"video Tour": 1}
    assert influence["linear"] == {"page /pricing": 0.5, "video Tour": 0.5}
    assert r["marketing"]["monthly"] == [{"month": "2026-03", "mqls": 3, "target": 2, "met": True}]
    forecast = r["forecast"]
    assert forecast["open"] == {"mql": 1, "sal": 0, "sql": 0}
    assert forecast["expected_sqls"] == pytest.approx(forecast["rates"]["mql_to_sql"])
    assert forecast["expected_deals"] == pytest.approx(forecast["rates"]["mql_to_customer"])
    assert "lead response" in done.stdout


def test_html_report_is_self_contained(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    rules, config, events = setup
    out = tmp_path / "r.html"
    done = _report(rules, config, str(events), "--html", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    html = out.read_text()
    assert "default-src 'none'" in html  # the page may not fetch anything from anywhere
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", html)
    assert html.count('class="chart"') == 6 and "Plotly.newPlot" in html
    assert len(html) > 1_000_000  # plotly.js itself is inlined


def test_bad_agreement_is_named(setup: tuple[Path, Path, Path]) -> None:
    rules, config, events = setup
    (config / "agreement.yaml").write_text("marketing: {mqls_per_month: lots}\n")
    done = _report(rules, config, str(events))
    assert done.returncode == 1
    assert f"{config / 'agreement.yaml'}:1:1: marketing.mqls_per_month" in done.stdout


def test_sla_breaches_in_the_report_count_business_hours_when_the_sla_does(
    setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """SLA clocks may count business hours only: the report's breach rate counts the SLA as
    its timer does. An MQL on Friday 16:00 accepted on Monday 10:00 waited 66 hours, but two
    business hours (09:00-17:00, Monday to Friday): within a 4h SLA."""
    rules, config, _ = setup
    friday = [
        _e(1, "u-5", "06T16:00:00", event="Demo Requested"),  # 2026-03-06 is a Friday
        _e(2, "u-5", "09T10:00:00", event="Lead Accepted"),
    ]
    events = tmp_path / "friday.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in friday))

    def breaches(rules_text: str) -> tuple[int, int]:
        (rules / "rules.yaml").write_text(rules_text)
        out = tmp_path / "r.json"
        done = _report(rules, config, str(events), "--json", str(out), "--quiet")
        assert done.returncode == 0, done.stderr
        sla = json.loads(out.read_text())["sla"]
        return sla["decided"], sla["breaches"]

    assert breaches(RULES) == (1, 1)  # around the clock: 66 h > 4 h
    business = RULES.replace(
        "    accept_within: 4h\n",
        '    accept_within: 4h\n    business_hours: {hours: "09:00-17:00", days: [mon, tue, wed, thu, fri]}\n',
    )
    assert breaches(business) == (1, 0)
