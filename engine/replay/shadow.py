"""A shadow rule set over an event log file, by replay: `leadrules report --shadow` for a
log the daemon's shadow did not run on (given files, or a database without recorded shadow
decisions).

`shadow: DIR` in config/leadrules.yaml names the candidate. The log is replayed in the order
it was received (what the daemon did, `replay --order received`) under the live rules and
under the shadow rules; the difference (`core.shadow_diff`) is what the shadow would have
decided that live did not, and the reverse. Nothing is sent; promoting the candidate is a
change to the rule files, reviewed in git. The daemon's own shadow: `daemon.shadow`.
"""

from __future__ import annotations

import io
from typing import Any

import orjson

from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.core.shadow_diff import ShadowDiff, compare, render
from leadrules.engine.replay.dry_run import replay
from leadrules.engine.replay.sources import EventFile

__all__ = ["ShadowDiff", "render", "shadow_diff"]


def _records(log: str, rules: RuleSet) -> list[dict[str, Any]]:
    out = io.BytesIO()
    source = EventFile(log)
    try:
        replay([source], rules, out, order="received")
    finally:
        source.close()
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def shadow_diff(log: str, live: RuleSet, shadow: RuleSet) -> ShadowDiff:
    """Both rule sets over the event log file `log` (as `leadrules export` writes it)."""
    return compare(_records(log, live), _records(log, shadow))
