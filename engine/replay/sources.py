"""Reading Segment messages from JSON Lines files for a replay, in timestamp order.

Files may be plain or `.gz`, `-` is standard input, and input may be in any order. Memory
stays bounded for sorted (or nearly sorted) input: each file is read through a reorder buffer
and the files are merged. Input that is too far out of order for the buffer raises
`OutOfOrder`, and the caller starts again with a full in-memory sort (standard input is
spooled to a temporary file as it is read so that it can be read again).
"""

from __future__ import annotations

import gzip
import heapq
import shutil
import sys
import tempfile
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import compress
from pathlib import Path
from typing import IO, cast

import orjson

from leadrules.engine.core.events import Event, normalize
from leadrules.engine.errors import EventError, LeadrulesError

REORDER_WINDOW = 20_000


class OutOfOrder(Exception):
    """A message arrived too far out of order for the streaming reader."""


@dataclass
class Rejected:
    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


Item = tuple[int, int, int, Event]  # (timestamp, file index, line number, event)
OnReject = Callable[[Rejected], None]


class EventFile:
    """One input file (or `-`), readable more than once."""

    def __init__(self, name: str, stdin: IO[bytes] | None = None) -> None:
        self.name = name
        self._spool: Path | None = None
        if name == "-":
            spool = tempfile.NamedTemporaryFile(prefix="leadrules-stdin-", delete=False)  # noqa: SIM115 - closed below, kept for a second read
            shutil.copyfileobj(stdin or sys.stdin.buffer, spool)
            spool.close()
            self._spool = Path(spool.name)

    @property
    def path(self) -> Path:
        return self._spool or Path(self.name)

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def open(self) -> IO[bytes]:
        path = self.path
        with open(path, "rb") as probe:
            magic = probe.read(3)
        # gzip: its magic number and the deflate method (RFC 1952), and a start that
        # inflates; a text file that merely begins with those bytes is read as text (its
        # first line is then rejected, the rest kept).
        if magic == b"\x1f\x8b\x08" and _inflates(path):
            return cast(IO[bytes], gzip.open(path, "rb"))
        return open(path, "rb")

    def close(self) -> None:
        if self._spool is not None:
            self._spool.unlink(missing_ok=True)


def parse_lines(
    source: EventFile,
    index: int,
    on_reject: OnReject,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[Item]:
    """Every valid message of one file, in file order; invalid lines go to `on_reject`."""
    name = source.name
    with source.open() as handle:
        for number, line in numbered_lines(handle, name):
            if on_bytes is not None:
                on_bytes(len(line))
            if not line.strip():
                continue
            event = parse_line(line, name, number, on_reject)
            if event is not None:
                yield (event.ts, index, number, event)


def parse_line(line: bytes, name: str, number: int, on_reject: OnReject) -> Event | None:
    """One line as an event, or None with the reason handed to `on_reject`."""
    try:
        raw = orjson.loads(line)
        given = raw.get("messageId") if type(raw) is dict else None
        default = f"{name}:{number}" if given is None or given == "" else None  # kept lazy
        return normalize(raw, default_message_id=default)
    except orjson.JSONDecodeError as exc:
        on_reject(Rejected(name, number, f"not valid JSON: {exc}"))
    except EventError as exc:
        on_reject(Rejected(name, number, str(exc)))
    return None


def event_files(names: list[str]) -> list[EventFile]:
    """An `EventFile` for each name (`-`: standard input); a missing file is an error."""
    for name in names:
        if name != "-" and not Path(name).is_file():
            raise LeadrulesError(f"{name}: no such file")
    return [EventFile(name) for name in names]


def _inflates(path: Path, probe: int = 1 << 16) -> bool:
    """Whether the start of `path` is gzip that inflates: some output within `probe` bytes
    (a real file cut short later is still gzip, and an error when read that far)."""
    out = 0
    try:
        with gzip.open(path, "rb") as handle:
            while out < probe and (chunk := handle.read(4096)):
                out += len(chunk)
    except EOFError:
        return out > 0
    except (OSError, zlib.error):
        return False
    return True


def numbered_lines(
    handle: IO[bytes], name: str, keep: bytes | None = None
) -> Iterator[tuple[int, bytes]]:
    """Numbered lines (with `keep`, only those whose byte in it is not 0: a worker's share,
    skipped in C); a gzip file that turns out corrupt or truncated is an error naming the
    file and the line where it broke, not a traceback."""
    number = 0
    lines: Iterator[tuple[int, bytes]] = enumerate(handle, 1)
    if keep is not None:
        lines = compress(lines, keep)
    try:
        for number, line in lines:
            yield number, line
    except (OSError, EOFError, zlib.error) as exc:
        where = f"after line {number}" if number else "from its start"
        raise LeadrulesError(f"{name}: not valid gzip {where}: {exc}") from None


def _reordered(items: Iterator[Item], window: int) -> Iterator[Item]:
    """Sort a nearly sorted stream with a bounded buffer, or raise OutOfOrder.

    The buffer holds `window` items; each further item goes in and the least comes out. It
    is kept as a run that arrived in order (a deque: sorted input costs no comparison beyond
    one per item) and a heap of the items that arrived out of order. Items compare as tuples;
    (timestamp, file, line) is unique, so the event itself is never compared."""
    run: deque[Item] = deque()
    late: list[Item] = []
    append, popleft = run.append, run.popleft
    push, pop = heapq.heappush, heapq.heappop
    last: Item | None = None
    for item in items:
        if not run or item > run[-1]:
            append(item)
        else:
            push(late, item)
        if len(run) + len(late) <= window:
            continue
        out = pop(late) if late and late[0] < run[0] else popleft()
        if last is not None and out < last:
            raise OutOfOrder(f"line {out[2]} is more than {window} messages out of order")
        last = out
        yield out
    late.sort()
    for out in heapq.merge(run, late):
        if last is not None and out < last:
            raise OutOfOrder(f"line {out[2]} is more than {window} messages out of order")
        last = out
        yield out


def ordered(
    sources: list[EventFile],
    on_reject: OnReject,
    *,
    full_sort: bool,
    on_bytes: Callable[[int], None] | None = None,
    window: int = REORDER_WINDOW,
) -> Iterator[Item]:
    """All valid messages of all sources in (timestamp, file, line) order."""
    streams = [parse_lines(s, i, on_reject, on_bytes) for i, s in enumerate(sources)]
    if full_sort:
        everything = [item for stream in streams for item in stream]
        everything.sort()
        yield from everything
        return
    if len(streams) == 1:
        yield from _reordered(streams[0], window)
        return
    yield from heapq.merge(*(_reordered(s, window) for s in streams))
