"""Durations are a pydantic type: `30d` in a rule file is microseconds once validated, and a
malformed one is reported where it stands, by the same validation as any other type error."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from leadrules.engine.language.loader import check, load_rules
from leadrules.engine.language.rule_files import ScoringRuleModel, StepModel
from leadrules.engine.language.schema import json_schema
from leadrules.engine.language.settings import load_settings
from leadrules.engine.timefmt import US_PER_S

DAY = 86_400 * US_PER_S


@pytest.mark.parametrize(
    ("text", "us"),
    [("90s", 90 * US_PER_S), ("15m", 900 * US_PER_S), ("4h", 4 * 3600 * US_PER_S),
     ("30d", 30 * DAY), ("2w", 14 * DAY)],
)  # fmt: skip
def test_a_duration_is_microseconds_after_validation(text: str, us: int) -> None:
    step = StepModel.model_validate({"wait": text})
    assert step.wait == us


@pytest.mark.parametrize("bad", ["7days", "1.5h", 7, 1.5, "0d", "", "-1d", True])
def test_a_malformed_duration_is_a_value_error_at_its_key(bad: object) -> None:
    with pytest.raises(ValidationError) as caught:
        ScoringRuleModel.model_validate(
            {"id": "p", "when": {"event": "X"}, "points": 1, "expires_after": bad}
        )
    (error,) = caught.value.errors()
    assert error["loc"] == ("expires_after",)
    assert "duration must be" in error["msg"]


def test_the_schema_shows_a_duration_as_text() -> None:
    defs = json_schema()["$defs"]
    within = defs["Unless"]["properties"]["within"]
    assert within["type"] == "string" and within["pattern"] == "^[0-9]+[smhdw]$"
    assert "MessageRef" in defs and "LimitModel" in defs and "Message" not in defs


def _project(tmp_path: Path, text: str) -> Path:
    (tmp_path / "rules" / "templates").mkdir(parents=True)
    (tmp_path / "rules" / "templates" / "hello.md").write_text("Hi\n")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "channels.yaml").write_text("channels:\n  sales: {adapter: console}\n")
    (tmp_path / "rules" / "r.yaml").write_text(textwrap.dedent(text).lstrip("\n"))
    return tmp_path


def test_compiled_rules_carry_the_converted_durations(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        """
        scoring:
          expires_after: 30d
          rules:
            - {id: a, when: {event: X}, points: 1}
            - {id: b, when: {event: Y}, points: 1, expires_after: 2w, limit: {times: 1, per: 1d}}
        triggers:
          - id: t
            when: {event: X, times: 2, within: 7d}
            unless: {event: Y, within: 4h}
            cooldown: 15m
            then: [{notify: {channel: sales, template: hello}}]
        lifecycle:
          sla: {accept_within: 90s}
        """,
    )
    rules, _ = load_rules(root / "rules", root / "config")
    a, b = rules.scoring
    assert a.expires_after_us == 30 * DAY  # the file's default
    assert b.expires_after_us == 14 * DAY
    assert b.limit is not None and b.limit.per_us == DAY
    (t,) = rules.triggers
    assert (t.within_us, t.unless_within_us, t.cooldown_us) == (
        7 * DAY,
        4 * 3600 * US_PER_S,
        900 * US_PER_S,
    )
    assert rules.lifecycle.sla_accept_within_us == 90 * US_PER_S


def test_bad_durations_in_two_items_are_both_reported_in_place(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        """
        triggers:
          - id: t
            when: {event: X, times: 2, within: 7 days}
            then: [{notify: {channel: sales, template: hello}}]
          - id: u
            when: {event: X}
            cooldown: 1.5h
            then: [{notify: {channel: sales, template: hello}}]
        """,
    )
    found = [str(p) for p in check(root / "rules", root / "config")]
    assert [f.split(": ", 1)[0].rsplit(":", 2)[1:] for f in found] == [["3", "40"], ["7", "15"]]
    assert all("duration must be an integer and a unit" in f for f in found)


def test_daemon_settings_durations_are_the_same_type(tmp_path: Path) -> None:
    (tmp_path / "leadrules.yaml").write_text("dispatch: {backoff_base: 1s, backoff_max: 2h}\n")
    dispatch = load_settings(tmp_path).dispatch
    assert (dispatch.backoff_base, dispatch.backoff_max) == (US_PER_S, 2 * 3600 * US_PER_S)
    defaults = load_settings(tmp_path / "absent").dispatch
    assert (defaults.backoff_base, defaults.backoff_max) == (2 * US_PER_S, 600 * US_PER_S)
