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

import multiprocessing
import os
import zlib
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from multiprocessing.connection import Connection
from typing import Any

import orjson

from leadrules.engine.errors import LeadrulesError
from leadrules.engine.replay.dedupe import SeenIds
from leadrules.engine.replay.pool import default_workers
from leadrules.engine.replay.sources import EventFile

_hash = hash  # a messageId's hash, as the duplicate filter takes it

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


BLOCK_LINES = 1 << 13  # lines dealt to the scanners a block at a time, round-robin


@dataclass
class _Scanned:
    """What a scanner found in its blocks, in its own numbering of the ids (from 1)."""

    names: list[str]  # the ids, in number order
    counts: array[int]  # lines per number
    links: array[int]  # (number, its root) pairs: what its union-find joined
    lines: list[array[int]]  # per source, the number of each line of its blocks
    hashes: array[int]  # each messageId's hash ...
    senders: array[int]  # ... and the number of its first sender


def _scan(
    source: EventFile,
    ids: _Ids,
    messages: SeenIds,
    on_bytes: Callable[[int], None] | None,
    me: int = 0,
    scanners: int = 1,
    block: int = BLOCK_LINES,
) -> tuple[array[int], int]:
    """The number of the prospect of each line of this scanner's blocks (line i is scanner
    `(i // block) % scanners`'s; `_NONE` for none), links joined in `ids`; and the number
    of lines of the file."""
    loads, error = orjson.loads, orjson.JSONDecodeError
    numbers = array("i")
    append = numbers.append
    of, union, count = ids.of, ids.union, ids.count
    advance, held = messages.advance, messages.held
    read = total = index = 0
    with source.open() as handle:
        try:
            while lines := list(islice(handle, block)):
                mine = index % scanners == me
                index += 1
                total += len(lines)
                if on_bytes is not None:
                    read += sum(map(len, lines))
                    if read > 1 << 20:
                        on_bytes(read)
                        read = 0
                if not mine:
                    continue
                for line in lines:
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
                        first = held(_hash(message))
                        if first is not None and first != n:
                            union(n, first)
                    count[n] += 1
                    append(n)
        except (OSError, EOFError, zlib.error) as exc:
            raise LeadrulesError(
                f"{source.name}: not valid gzip after line {total}: {exc}"
            ) from None
    if on_bytes is not None and read:
        on_bytes(read)
    return numbers, total


def _scan_part(sources: list[EventFile], me: int, scanners: int, block: int) -> _Scanned:
    """Scanner `me`'s blocks of every source, in its own numbering (a forked process)."""
    ids = _Ids()
    messages = SeenIds(recent_limit=PASS_RECENT // scanners)  # all scanners: about a million
    lines = []
    for source in sources:
        numbers, _ = _scan(source, ids, messages, None, me, scanners, block)
        lines.append(numbers)  # (every scanner counts every line: this process's totals serve)
    find = ids.find
    links = array("i")
    for n in range(1, len(ids.parent)):
        root = find(n)
        if root != n:
            links.extend((n, root))
    hashes, senders = messages.table()
    counts = array("i", ids.count)
    return _Scanned(list(ids.number), counts, links, lines, hashes, senders)


def _child(sources: list[EventFile], me: int, scanners: int, block: int, conn: Connection) -> None:
    try:
        conn.send(("done", _scan_part(sources, me, scanners, block)))
    except BaseException as exc:
        conn.send(("error", str(exc) if isinstance(exc, LeadrulesError) else repr(exc)))
    finally:
        conn.close()
    os._exit(0)  # sent: end without tearing the heap down (as replay.pool's workers do)


def _join(ids: _Ids, messages: SeenIds, part: _Scanned, last: bool) -> list[int]:
    """Fold another scanner's findings into `ids` and `messages` (its messageIds only looked
    up when it is the `last` joined); its numbers' in ours."""
    of, union, count = ids.of, ids.union, ids.count
    ours = [_NONE, *map(of, part.names)]
    for n, lines in enumerate(part.counts):
        count[ours[n]] += lines
    links = part.links
    for i in range(0, len(links), 2):
        union(ours[links[i]], ours[links[i + 1]])
    senders = map(ours.__getitem__, part.senders)
    for sender, first in messages.hold_all(part.hashes, senders, hold=not last):
        union(sender, first)
    part.hashes = part.senders = array("q")  # joined: free them before the next scanner's
    return ours


def plan(
    sources: list[EventFile],
    workers: int,
    on_bytes: Callable[[int], None] | None = None,
    *,
    scanners: int | None = None,
    block: int = BLOCK_LINES,
) -> list[bytes]:
    """For each source, one byte per line: the index of the worker that owns the line.

    The lines are read by `scanners` processes (default: as many as there are workers, up
    to this machine's cores), each parsing every `scanners`-th block of `block` lines; this
    process is one of them and joins what the others found."""
    if scanners is None:
        scanners = min(workers, default_workers())
    if "fork" not in multiprocessing.get_all_start_methods():
        scanners = 1  # the other scanners are forked: they start with the sources at hand
    scanners = max(1, scanners)
    context = multiprocessing.get_context("fork") if scanners > 1 else None
    children = []
    for me in range(1, scanners):
        assert context is not None
        parent, child = context.Pipe()
        proc = context.Process(target=_child, args=(sources, me, scanners, block, child))
        proc.daemon = True
        proc.start()
        child.close()
        children.append((proc, parent))
    try:
        ids = _Ids()
        # Each messageId with its first sender's number: the newest million in a dict
        # (about 100 MB, freed before the workers start, who take more), older ones in
        # compact chunks of ~19 bytes each (dedupe.SeenIds).
        messages = SeenIds(recent_limit=PASS_RECENT)
        found = [_scan(source, ids, messages, on_bytes, 0, scanners, block) for source in sources]
        own = [numbers for numbers, _ in found]
        totals = [total for _, total in found]
        parts: list[tuple[_Scanned, list[int]]] = []
        for _, conn in children:
            try:
                what, value = conn.recv()
            except EOFError:
                raise LeadrulesError("a scanner of the partition pass stopped") from None
            if what == "error":
                raise LeadrulesError(value)
            last = len(parts) == len(children) - 1
            parts.append((value, _join(ids, messages, value, last)))
    finally:
        for proc, conn in children:
            conn.close()
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
    del messages
    by_number = _deal(ids, workers)
    out = []
    for i, total in enumerate(totals):
        owned = [bytes(map(by_number.__getitem__, own[i]))]
        for part, ours in parts:
            local = bytes(by_number[n] for n in ours)
            owned.append(bytes(map(local.__getitem__, part.lines[i])))
        out.append(_stitch(owned, total, block))
    return out


def _deal(ids: _Ids, workers: int) -> bytes:
    """Each id number's worker: components dealt largest first, each to the least loaded;
    ties by the component's least id, so the plan depends on nothing but the input."""
    find = ids.find
    roots = [find(n) for n in range(len(ids.parent))]
    sizes: dict[int, int] = {}
    for n, root in enumerate(roots):
        if n != _NONE:
            sizes[root] = sizes.get(root, 0) + ids.count[n]
    least: dict[int, str] = {}
    for prospect, n in ids.number.items():
        root = roots[n]
        if root not in least or prospect < least[root]:
            least[root] = prospect
    load = [0] * workers
    owner: dict[int, int] = {}
    for root, size in sorted(sizes.items(), key=lambda item: (-item[1], least[item[0]])):
        target = min(range(workers), key=load.__getitem__)
        owner[root] = target
        load[target] += size
    return bytes([0] + [owner[roots[n]] for n in range(1, len(roots))])


def _stitch(owned: list[bytes], total: int, block: int) -> bytes:
    """The scanners' bytes back in line order: block i is scanner i % len(owned)'s."""
    scanners = len(owned)
    at = [0] * scanners
    pieces = []
    for index in range((total + block - 1) // block):
        me = index % scanners
        pieces.append(owned[me][at[me] : at[me] + block])
        at[me] += block
    return b"".join(pieces)
