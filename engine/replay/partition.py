"""The first pass of a replay on several workers: which worker owns each input line.

A prospect's decisions depend on every event of every id merged into it, so the unit of work
is a *merged identity*: the ids an `identify` (userId + anonymousId) or an `alias`
(previousId + userId) links, joined by union-find over the whole input. Messages sharing a
`messageId` are joined too, so the worker that sees the second copy also saw the first and
ignores it exactly as one process would. A `group` message joins its prospect to its
account (`groupId`), so account rules (core.accounts: the account score, account triggers)
see every member of an account in one worker. Joining more than the evaluator would merge
(an `identify` the evaluator refuses because the id is already merged elsewhere, the
accounts of rules that use none) only costs balance, never correctness.

Components are dealt to workers largest first, each to the least loaded. A line that does
not parse goes to worker 0, which rejects it the way one process would.

The pass is the one part of a parallel replay that runs in a single process, so it keeps
per line only what it must: each id is numbered once (a small int), the union-find works on
those numbers in a list, each line keeps its id's number in an `array`, and a `messageId` is
remembered by its hash with the number of the first id that sent it, in the duplicate
filter's table (`dedupe.SeenIds`: the newest million in a dict, older ones in compact chunks
of about 19 bytes a message; a second copy from another id joins the two; a hash collision
only joins two components). The pass runs before the workers start and frees its tables
first, so its dict (about 100 MB at a million messages) never adds to their memory.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import Any

import orjson

from leadrules.engine.replay.dedupe import SeenIds
from leadrules.engine.replay.sources import EventFile

PASS_RECENT = 1 << 20  # messageIds the pass holds in a dict (see `plan`)
_NONE = 0  # the number of "no prospect" (a line that does not parse, or names no id)


class _Ids:
    """Ids numbered from 1 in order of first sight, with a union-find over the numbers."""

    __slots__ = ("count", "number", "parent")

    def __init__(self) -> None:
        self.number: dict[str, int] = {}
        self.parent: list[int] = [_NONE]
        self.count: list[int] = [0]  # lines per number

    def of(self, prospect: str) -> int:
        found = self.number.get(prospect)
        if found is None:
            found = self.number[prospect] = len(self.parent)
            self.parent.append(found)
            self.count.append(0)
        return found

    def find(self, n: int) -> int:
        parent = self.parent
        root = n
        while parent[root] != root:
            root = parent[root]
        while parent[n] != root:
            parent[n], n = root, parent[n]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def _as_id(value: Any) -> str | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    if type(value) is str:
        return value
    if isinstance(value, int):
        return str(value)
    return None


def _scan(
    source: EventFile,
    ids: _Ids,
    messages: SeenIds,
    on_bytes: Callable[[int], None] | None,
) -> array[int]:
    """The number of each line's prospect (`_NONE` for none); links joined in `ids`."""
    loads, error = orjson.loads, orjson.JSONDecodeError
    numbers = array("i")
    append = numbers.append
    of, union, count = ids.of, ids.union, ids.count
    advance, held = messages.advance, messages.held
    read = 0
    with source.open() as handle:
        for line in handle:
            read += len(line)
            if read > 1 << 20 and on_bytes is not None:
                on_bytes(read)
                read = 0
            try:
                raw = loads(line)
            except error:
                append(_NONE)
                continue
            if type(raw) is not dict:
                append(_NONE)
                continue
            user = raw.get("userId")
            anon = raw.get("anonymousId")
            if type(user) is not str or not user:
                user = _as_id(user)
            if anon is not None and (type(anon) is not str or not anon):
                anon = _as_id(anon)
            prospect = user or anon
            if prospect is None:
                append(_NONE)
                continue
            n = of(prospect)
            kind = raw.get("type")
            if kind == "identify":
                if user and anon:
                    union(n, of(anon))
            elif kind == "alias":
                previous = _as_id(raw.get("previousId"))
                if previous and user:
                    union(n, of(previous))
            elif kind == "group":
                group = raw.get("groupId")
                if type(group) is str and group:
                    union(n, of("\0group:" + group))  # a name no prospect id has
            message = raw.get("messageId")
            if type(message) is str and message:
                advance(n)  # a message's "time" here is its sender's number
                first = held(message)
                if first is not None and first != n:
                    union(n, first)
            count[n] += 1
            append(n)
    if on_bytes is not None and read:
        on_bytes(read)
    return numbers


def plan(
    sources: list[EventFile],
    workers: int,
    on_bytes: Callable[[int], None] | None = None,
) -> list[bytes]:
    """For each source, one byte per line: the index of the worker that owns the line."""
    ids = _Ids()
    # Each messageId with its first sender's number: the newest million in a dict (about
    # 100 MB, freed before the workers start, who take more), older ones in compact chunks
    # of ~19 bytes each (dedupe.SeenIds), so a year of events never freezes a chunk.
    messages = SeenIds(recent_limit=PASS_RECENT)
    lines = [_scan(source, ids, messages, on_bytes) for source in sources]
    del messages
    find = ids.find
    roots = [find(n) for n in range(len(ids.parent))]
    sizes: dict[int, int] = {}
    for n, root in enumerate(roots):
        if n != _NONE:
            sizes[root] = sizes.get(root, 0) + ids.count[n]
    # Deal components largest first; ties by the component's first id, so the plan does not
    # depend on anything but the input.
    first_id = {n: prospect for prospect, n in ids.number.items()}
    load = [0] * workers
    owner: dict[int, int] = {}
    for root, size in sorted(sizes.items(), key=lambda item: (-item[1], first_id[item[0]])):
        target = min(range(workers), key=load.__getitem__)
        owner[root] = target
        load[target] += size
    by_number = bytes([0] + [owner[roots[n]] for n in range(1, len(roots))])
    return [bytes(map(by_number.__getitem__, numbers)) for numbers in lines]
