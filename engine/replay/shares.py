"""Each partition's share of the input (`replay --workers`, `backtest --workers`, the
cluster): the partition pass's plan, and a partition's lines read back from the files in
timestamp order; the rejected lines of all partitions in file order.

The plan (`partition.plan`) gives one byte per line: its partition. A partition reads the
files itself (each worker, by a path it can reach), skips the other partitions' lines in C
and parses only its own.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from leadrules.engine.replay.partition import plan
from leadrules.engine.replay.pool import Progress
from leadrules.engine.replay.sources import (
    REORDER_WINDOW,
    EventFile,
    Item,
    Rejected,
    _reordered,
    numbered_lines,
    parse_line,
)

# Below this much input, starting workers costs more than it saves (the partition pass
# reads every line once more).
PARALLEL_BYTES = 8 << 20


@dataclass
class Partitioned:
    """What every partition of a job needs: the inputs (by a path each worker can read),
    which partition owns each line, and where time ends."""

    names: list[tuple[str, str]]  # (name in records and messages, path)
    plans: list[bytes]
    partitions: int
    until: int | None

    @classmethod
    def of(
        cls,
        sources: list[EventFile],
        partitions: int,
        until: int | None,
        on_bytes: Progress | None,
    ) -> Partitioned:
        plans = plan(sources, partitions, on_bytes)
        names = [(s.name, os.path.abspath(s.path)) for s in sources]
        return cls(names, plans, partitions, until)

    def sources(self) -> list[EventFile]:
        out = []
        for name, path in self.names:
            source = EventFile(path)
            source.name = name
            out.append(source)
        return out

    def items(
        self, me: int, reject: Callable[[Rejected], None], full_sort: bool, progress: Progress
    ) -> Iterator[Item]:
        """The partition's valid messages in (timestamp, file, line) order."""
        sources = self.sources()
        streams = [_lines(s, i, self.plans[i], me, reject, progress) for i, s in enumerate(sources)]
        if full_sort:
            everything = [item for stream in streams for item in stream]
            everything.sort()
            return iter(everything)
        if len(streams) == 1:
            return _reordered(streams[0], REORDER_WINDOW)
        return heapq.merge(*(_reordered(s, REORDER_WINDOW) for s in streams))


def _lines(
    source: EventFile,
    index: int,
    mine: bytes,
    me: int,
    reject: Callable[[Rejected], None],
    progress: Progress,
) -> Iterator[Item]:
    name = source.name
    read = 0
    keep = mine.translate(_owned_by(me))  # 1 for this partition's lines, 0 for the others'
    with source.open() as handle:
        for number, line in numbered_lines(handle, name, keep):
            read += len(line)
            if read > 1 << 20:  # the parent's progress bar
                progress(read)
                read = 0
            if not line.strip():
                continue
            event = parse_line(line, name, number, reject)
            if event is not None:
                yield (event.ts, index, number, event)
    progress(read)


def _owned_by(me: int) -> bytes:
    """A `bytes.translate` table: `me` -> 1, any other partition -> 0."""
    return bytes(int(owner == me) for owner in range(256))


def ordered_rejections(sources: list[EventFile], parts: list[list[Rejected]]) -> list[Rejected]:
    """The partitions' rejected lines in file order, as one process reports them."""
    index = {s.name: i for i, s in enumerate(sources)}
    every = [(index.get(r.path, 0), r.line, r) for bad in parts for r in bad]
    every.sort(key=lambda item: item[:2])
    return [item for *_, item in every]
