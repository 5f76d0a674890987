"""The difference between what a shadow rule set decided and what live decided: the records
only the shadow made ("would have") and those only live made, each list in decision order.
Records are compared whole, as a multiset: the same record made twice by one side and once
by the other leaves one over."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

Record = dict[str, Any]


@dataclass
class ShadowDiff:
    live: int  # decisions live made
    shadow: int  # decisions the shadow would have made
    would_have: list[Record]  # shadow only, in decision order
    live_only: list[Record]  # live only, in decision order


def _key(record: Record) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def minus(left: Iterable[Record], right: Iterable[Record]) -> list[Record]:
    """The records of `left` not matched by one of `right` (as a multiset), in order."""
    count = Counter(_key(r) for r in right)
    out = []
    for record in left:
        key = _key(record)
        if count[key]:
            count[key] -= 1
        else:
            out.append(record)
    return out


def compare(live: list[Record], shadow: list[Record]) -> ShadowDiff:
    """The shadow's records against live's."""
    return ShadowDiff(len(live), len(shadow), minus(shadow, live), minus(live, shadow))


def render(diff: ShadowDiff) -> str:
    """The diff for a terminal: `+` would have (shadow only), `-` live only."""
    lines = [
        f"shadow: {diff.shadow} decision(s), live: {diff.live}; "
        f"{len(diff.would_have)} would have, {len(diff.live_only)} live only"
    ]
    lines += ["+ " + orjson.dumps(r).decode() for r in diff.would_have]
    lines += ["- " + orjson.dumps(r).decode() for r in diff.live_only]
    return "\n".join(lines)
