"""A shadow rule set: a candidate beside the live one, on the live stream, never delivered.

`shadow: DIR` in config/leadrules.yaml names the candidate. `leadrules report --shadow`
replays the daemon's event log in the order it was received (what the daemon did, `replay
--order received`) under the live rules and under the shadow rules, and shows what the
shadow would have decided that live did not, and the reverse. Nothing is sent; promoting the
candidate is a change to the rule files, reviewed in git.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson

from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.replay.dry_run import replay
from leadrules.engine.replay.sources import EventFile


@dataclass
class ShadowDiff:
    live: int  # decisions live made
    shadow: int  # decisions the shadow would have made
    would_have: list[dict[str, Any]]  # shadow only, in decision order
    live_only: list[dict[str, Any]]  # live only, in decision order


def _records(log: str, rules: RuleSet) -> list[dict[str, Any]]:
    out = io.BytesIO()
    source = EventFile(log)
    try:
        replay([source], rules, out, order="received")
    finally:
        source.close()
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def _minus(left: list[dict[str, Any]], right: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of `left` not matched by one of `right` (as a multiset), in order."""
    count = Counter(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in right)
    out = []
    for record in left:
        key = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
        if count[key]:
            count[key] -= 1
        else:
            out.append(record)
    return out


def shadow_diff(log: str, live: RuleSet, shadow: RuleSet) -> ShadowDiff:
    """Both rule sets over the event log file `log` (as `leadrules export` writes it)."""
    live_records, shadow_records = _records(log, live), _records(log, shadow)
    return ShadowDiff(
        len(live_records),
        len(shadow_records),
        _minus(shadow_records, live_records),
        _minus(live_records, shadow_records),
    )


def render(diff: ShadowDiff) -> str:
    """The diff for a terminal: `+` would have (shadow only), `-` live only."""
    lines = [
        f"shadow: {diff.shadow} decision(s), live: {diff.live}; "
        f"{len(diff.would_have)} would have, {len(diff.live_only)} live only"
    ]
    lines += ["+ " + orjson.dumps(r).decode() for r in diff.would_have]
    lines += ["- " + orjson.dumps(r).decode() for r in diff.live_only]
    return "\n".join(lines)
