"""A channel can subscribe to stage changes (`stage_changes:` in config/channels.yaml), so the
CRM is told of every `set_stage` without a rule per stage."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from leadrules.engine.errors import RuleError
from leadrules.engine.language.loader import load_rules
from leadrules.engine.replay.dry_run import replay
from leadrules.engine.replay.sources import EventFile
from tests.scenario import CHANNELS, at, page, pick, track, write_events, write_rules

RULES = """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 30}
    lifecycle:
      mql_threshold: 60
    """


def _replay(tmp_path: Path, crm: str, events: list[dict[str, object]]) -> list[dict[str, object]]:
    rules_dir, config_dir = write_rules(tmp_path, RULES, {"crm-stage.txt": "{{ stage }}"})
    (config_dir / "channels.yaml").write_text(CHANNELS.replace("  crm: {adapter: console}", crm))
    rules, _ = load_rules(rules_dir, config_dir)
    out = io.BytesIO()
    replay([EventFile(str(write_events(tmp_path / "e.jsonl", events)))], rules, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


EVENTS = [
    page("u1", at(0)),
    page("u1", at(0, 1)),  # mql
    track("u1", at(0, 2), "Lead Accepted"),
    track("u1", at(0, 3), "Deal Won"),
]


def test_a_channel_subscribed_to_stage_changes_is_told_of_every_set_stage(
    tmp_path: Path,
) -> None:
    records = _replay(
        tmp_path, "  crm: {adapter: console, stage_changes: {template: crm-stage}}", EVENTS
    )
    assert pick(records, "action", "rule", "channel", "template", "stage") == [
        ("set_stage", "lifecycle.mql", None, None, "mql"),
        ("notify", "lifecycle.mql", "crm", "crm-stage", "mql"),
        ("set_stage", "lifecycle.sal", None, None, "sal"),
        ("notify", "lifecycle.sal", "crm", "crm-stage", "sal"),
        ("set_stage", "lifecycle.customer", None, None, "customer"),
        ("notify", "lifecycle.customer", "crm", "crm-stage", "customer"),
    ]


def test_stages_restrict_the_subscription_and_no_key_tells_nothing(tmp_path: Path) -> None:
    only = "  crm: {adapter: console, stage_changes: {template: crm-stage, stages: [customer]}}"
    records = _replay(tmp_path / "a", only, EVENTS)
    assert [r["rule"] for r in records if r["action"] == "notify"] == ["lifecycle.customer"]
    plain = _replay(tmp_path / "b", "  crm: {adapter: console}", EVENTS)
    assert [r["action"] for r in plain] == ["set_stage"] * 3


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{template: crm-stag}", "stage_changes: unknown template 'crm-stag'"),
        ("{template: crm-stage, stages: [sqll]}", "unknown stage 'sqll' (did you mean 'sql'?)"),
        ("{templat: crm-stage}", "unknown key 'templat' (did you mean 'template'?)"),
    ],
)
def test_check_reports_a_bad_subscription_at_its_position(
    tmp_path: Path, spec: str, message: str
) -> None:
    rules_dir, config_dir = write_rules(tmp_path, RULES, {"crm-stage.txt": "{{ stage }}"})
    crm = f"  crm: {{adapter: console, stage_changes: {spec}}}"
    (config_dir / "channels.yaml").write_text(CHANNELS.replace("  crm: {adapter: console}", crm))
    with pytest.raises(RuleError) as caught:
        load_rules(rules_dir, config_dir)
    found = [p for p in caught.value.problems if p.message.startswith(message)]
    assert found and found[0].path.endswith("config/channels.yaml") and found[0].line == 5
