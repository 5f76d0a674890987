"""The first pass of a replay on several workers: which worker owns each input line.

A prospect's decisions depend on every event of every id merged into it, so the unit of work
is a *merged identity*: the ids an `identify` (userId + anonymousId) or an `alias`
(previousId + userId) links, joined by union-find over the whole input. Messages sharing a
`messageId` are joined too, so the worker that sees the second copy also saw the first and
ignores it exactly as one process would. Joining more than the evaluator would merge (an
`identify` the evaluator refuses because the id is already merged elsewhere) only costs
balance, never correctness.

Components are dealt to workers largest first, each to the least loaded. A line that does
not parse goes to worker 0, which rejects it the way one process would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from leadrules.engine.replay.sources import EventFile


class _Union:
    __slots__ = ("parent",)

    def __init__(self) -> None:
        self.parent: dict[Any, Any] = {}

    def find(self, key: Any) -> Any:
        parent = self.parent
        root = key
        while True:
            up = parent.get(root)
            if up is None or up == root:
                break
            root = up
        while key != root:
            parent[key], key = root, parent[key]
        return root

    def union(self, a: Any, b: Any) -> Any:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
        return ra


def _as_id(value: Any) -> str | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    if type(value) is str:
        return value
    if isinstance(value, int):
        return str(value)
    return None


def plan(
    sources: list[EventFile],
    workers: int,
    on_bytes: Callable[[int], None] | None = None,
) -> list[bytearray]:
    """For each source, one byte per line: the index of the worker that owns the line."""
    uf = _Union()
    loads = orjson.loads
    # Per line: the component key of the line (its prospect id), or None (worker 0).
    keys: list[list[str | None]] = []
    for source in sources:
        mine: list[str | None] = []
        keys.append(mine)
        with source.open() as handle:
            for line in handle:
                if on_bytes is not None:
                    on_bytes(len(line))
                try:
                    raw = loads(line)
                except orjson.JSONDecodeError:
                    mine.append(None)
                    continue
                if type(raw) is not dict:
                    mine.append(None)
                    continue
                user = _as_id(raw.get("userId"))
                anon = _as_id(raw.get("anonymousId"))
                prospect = user or anon
                if prospect is None:
                    mine.append(None)
                    continue
                kind = raw.get("type")
                if kind == "identify" and user and anon:
                    uf.union(user, anon)
                elif kind == "alias":
                    previous = _as_id(raw.get("previousId"))
                    if previous and user:
                        uf.union(user, previous)
                message = raw.get("messageId")
                if type(message) is str and message:
                    # A hash keeps this table small; a collision only joins two components.
                    uf.union(prospect, ("m", hash(message)))
                mine.append(prospect)
    sizes: dict[Any, int] = {}
    find = uf.find
    for mine in keys:
        for key in mine:
            if key is not None:
                root = find(key)
                sizes[root] = sizes.get(root, 0) + 1
    load = [0] * workers
    owner: dict[Any, int] = {}
    for root, size in sorted(sizes.items(), key=lambda item: (-item[1], str(item[0]))):
        target = min(range(workers), key=load.__getitem__)
        owner[root] = target
        load[target] += size
    plans: list[bytearray] = []
    for mine in keys:
        plans.append(bytearray(0 if key is None else owner[find(key)] for key in mine))
    return plans
