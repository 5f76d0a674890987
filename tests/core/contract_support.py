"""Helpers for the contract tests: a replay that also returns what `explain` and the templates
see. Rules and events go through the real loader and replay, as in `tests/scenario.py`."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

from leadrules.engine.core.state import Decision
from leadrules.engine.core.turn import Options
from leadrules.engine.language.loader import load_rules
from leadrules.engine.replay.dry_run import replay
from leadrules.engine.replay.explain import explain_prospect
from leadrules.engine.replay.sources import EventFile
from leadrules.engine.timefmt import parse_timestamp
from tests.scenario import write_events, write_rules

# A trigger that records the score and stage whenever a `Ping` event arrives.
# Indented as the rule texts it is appended to (they are dedented as a whole).
PING = """
    triggers:
      - {id: ping, when: {event: Ping}, then: [{notify: {channel: log, template: x}}]}
    """

# A visit scores 50, an MQL at 100 notifies sales and starts a one-day SLA.
STAGES = """
    scoring:
      rules:
        - {id: visit, when: {page: {}}, points: 50}
    lifecycle:
      mql_threshold: 100
      on_mql:
        - notify: {channel: sales, template: new-mql}
      sla:
        accept_within: 1d
        on_breach:
          - notify: {channel: sales-managers, template: breach}
    """


class Replayed:
    """One replay: its decision records, the template variables of each notify/send, and
    `explain` of any prospect afterwards."""

    def __init__(
        self,
        tmp_path: Path,
        rules: str | dict[str, str],
        events: list[dict[str, Any]],
        *,
        until: str | None = None,
        keep_history: bool = False,
        name: str = "events.jsonl",
        order: str = "timestamp",
    ) -> None:
        rules_dir, config_dir = write_rules(tmp_path, rules)
        self.ruleset, _ = load_rules(rules_dir, config_dir, references="warn")
        source = write_events(tmp_path / name, events)
        out = io.BytesIO()
        decided: list[Decision] = []
        self.result = replay(
            [EventFile(str(source))],
            self.ruleset,
            out,
            until=None if until is None else parse_timestamp(until),
            options=Options(capture_context=True, keep_history=keep_history),
            on_decisions=decided.extend,
            order=order,
        )
        self.records = [json.loads(line) for line in out.getvalue().splitlines()]
        self.contexts = [d.context for d in decided if d.context is not None]

    def explain(self, prospect: str, when: str) -> dict[str, Any]:
        report = explain_prospect(self.result.world, self.ruleset, prospect, parse_timestamp(when))
        assert report is not None
        return report


def received(event: dict[str, Any], when: str) -> dict[str, Any]:
    """`event` as the daemon received it at `when` (replayed with `order="received"`)."""
    return {**event, "receivedAt": when}


def shuffled(events: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """The same events in another file order."""
    copy = list(events)
    random.Random(seed).shuffle(copy)
    return copy
