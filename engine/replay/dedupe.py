"""Which `messageId`s were seen, within a window of time, in little memory: replay's
duplicate filter.

A message is a duplicate when a message with the same `messageId` was accepted and the
replay's time (the latest timestamp read) is at most `window` past that message's
timestamp. In timestamp order that is: the repeat's timestamp is at most `window` after the
accepted copy's. Older ids are forgotten, so memory follows the window, not the history
(docs/scale.md, "Memory"); `window=None` keeps every id ever seen.

Each id costs about 19 bytes: its 64-bit hash (a collision between two ids in one window
is about n²/2⁶⁵ likely: 3·10⁻⁸ at 1M ids) and the accepted copy's timestamp. The newest
ids are held in a dict (the fast path: a lookup and an insert); every `recent_limit` of
them (524,288 by default, about 50 MB: a fixed cost, so a replay of up to half a million
messages per process never freezes) are frozen into a chunk (two sorted arrays, about a
microsecond an id to build); a chunk is dropped once its newest id is past the window. One Bloom filter over the
chunks spares most lookups the binary searches; it is rebuilt when the ids dropped from
it outnumber those it still holds.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable
from operator import itemgetter

from leadrules.engine.timefmt import US_PER_S, parse_duration

# A year: far longer than any retried delivery (Segment's own dedupe looks back about a
# day), and ids in a year cost about 19 bytes each (20 MB at a million a year).
DEFAULT_WINDOW = 365 * 86_400 * US_PER_S

_RECENT = 1 << 19  # ids held in the dict (about 50 MB) before they are frozen into a chunk
_BLOOM_BITS_PER_ID = 16  # two probes: about 1.4% false positives when full
_BLOOM_BYTES = 1 << 16  # the Bloom filter's least size (a power of two)


def parse_window(text: str) -> int | None:
    """`--dedupe-window`: a duration (`7d`, `24h`) in µs, or `all` (None: forever)."""
    if text == "all":
        return None
    return parse_duration(text)


# Python's string hash is randomised per process but stable within one, which is all a
# replay needs; it is 64 bits wide on the platforms leadrules runs on.
_hash = hash


class _Chunk:
    """Frozen ids: hashes sorted, the timestamp of each, and the newest timestamp."""

    __slots__ = ("hashes", "newest", "stamps")

    def __init__(self, held: dict[int, int]) -> None:
        hashes = sorted(held)  # ints sort fast, and no pair is allocated per id
        self.hashes = array("q", hashes)
        stamps = itemgetter(*hashes)(held) if len(hashes) > 1 else held.values()  # one C call
        self.stamps: array[int] = array("q", stamps)
        self.newest = max(self.stamps)

    def stamp(self, h: int) -> int | None:
        """The timestamp `h` was accepted at, or None if it is not here."""
        hashes = self.hashes
        i = bisect_left(hashes, h)
        if i < len(hashes) and hashes[i] == h:
            return self.stamps[i]
        return None


class SeenIds:
    """`window` in microseconds (None: forever). `recent_limit` and `bloom_bytes` are the
    sizes above; tests make them small so that a few ids go through every stage.

    `advance(ts)` says the timestamp of the message `add` is given next."""

    def __init__(
        self,
        window: int | None = None,
        *,
        recent_limit: int = _RECENT,
        bloom_bytes: int = _BLOOM_BYTES,
    ) -> None:
        self.window = window
        self._now = 0  # the timestamp of the message being read
        self._clock = 0  # the latest timestamp read
        self._recent_limit = recent_limit
        self._bloom_bytes = bloom_bytes
        self._recent: dict[int, int] = {}  # hash -> timestamp of the accepted copy
        self._chunks: list[_Chunk] = []  # oldest first
        self._bloom = bytearray(bloom_bytes)
        self._mask = bloom_bytes * 8 - 1
        self._marked = 0  # ids marked in the Bloom filter, dropped ones included

    def __len__(self) -> int:
        """Ids held (some may be past the window until their chunk is dropped)."""
        return len(self._recent) + self._frozen()

    def _frozen(self) -> int:
        return sum(len(chunk.hashes) for chunk in self._chunks)

    def advance(self, at: int) -> None:
        self._now = at
        if at > self._clock:
            self._clock = at

    def add(self, message_id: str) -> bool:
        """Remember `message_id`; False when it is a duplicate."""
        return self.held(_hash(message_id)) is None

    def held(self, h: int) -> int | None:
        """The time of the copy of the id hashed `h` (`hash(message_id)`) held within the
        window (a duplicate), or None after remembering it at the time `advance` gave. (The
        partition pass of `--workers` gives each message's sender number as its time and so
        reads back, for a repeated `messageId`, the number of its first sender.)"""
        oldest = None if self.window is None else self._clock - self.window
        at = self._recent.get(h)
        if at is None and self._chunks:
            at = self._stamp(h)
        if at is not None and (oldest is None or at >= oldest):
            return at
        self._recent[h] = self._now
        if len(self._recent) >= self._recent_limit:
            self._freeze()
        return None

    def hold_all(
        self, hashes: array[int], stamps: Iterable[int], *, hold: bool = True
    ) -> list[tuple[int, int]]:
        """`held` for many ids, each at its own time (the partition pass joining another
        scanner's table into its own): (time, time held) for each id already held at
        another time; the others are held from now on. With `hold=False` (the last table
        joined, and no window) they are only looked up: the clashes are all that is wanted."""
        clashes = []
        if self.window is None and not hold:
            get, stamp, frozen = self._recent.get, self._stamp, bool(self._chunks)
            for h, at in zip(hashes, stamps, strict=True):
                first = get(h)
                if first is None and frozen:
                    first = stamp(h)
                if first is not None and first != at:
                    clashes.append((at, first))
            return clashes
        fits = len(self._recent) + len(hashes) < self._recent_limit
        if self.window is None and not self._chunks and fits:  # all in the dict: C speed
            keep = self._recent.setdefault
            for h, at in zip(hashes, stamps, strict=True):
                first = keep(h, at)
                if first != at:
                    clashes.append((at, first))
            return clashes
        for h, at in zip(hashes, stamps, strict=True):
            self.advance(at)
            held = self.held(h)
            if held is not None and held != at:
                clashes.append((at, held))
        return clashes

    def table(self) -> tuple[array[int], array[int]]:
        """Every id held, as (hashes, times): oldest chunk first, the dict last."""
        hashes: array[int] = array("q")
        stamps: array[int] = array("q")
        for chunk in self._chunks:
            hashes.extend(chunk.hashes)
            stamps.extend(chunk.stamps)
        hashes.fromlist(list(self._recent))  # from a list: C speed (from an iterator: not)
        stamps.fromlist(list(self._recent.values()))
        return hashes, stamps

    def _stamp(self, h: int) -> int | None:
        """The timestamp of the newest frozen copy of `h`, or None."""
        bloom, mask = self._bloom, self._mask
        a, b = h & mask, (h >> 32) & mask
        if not (bloom[a >> 3] >> (a & 7)) & 1 or not (bloom[b >> 3] >> (b & 7)) & 1:
            return None
        for chunk in reversed(self._chunks):
            at = chunk.stamp(h)
            if at is not None:
                return at
        return None

    def _freeze(self) -> None:
        chunk = _Chunk(self._recent)
        self._recent = {}
        self._chunks.append(chunk)
        if self.window is not None:
            oldest = self._clock - self.window
            self._chunks = [c for c in self._chunks if c.newest >= oldest]
        held = self._frozen()
        self._marked += len(chunk.hashes)
        if self._marked > 2 * held or held * _BLOOM_BITS_PER_ID > len(self._bloom) * 8:
            self._rebuild_bloom(held)
        else:
            self._mark(chunk.hashes)

    def _rebuild_bloom(self, held: int) -> None:
        size = self._bloom_bytes
        while size * 8 < held * _BLOOM_BITS_PER_ID * 2:
            size *= 2
        self._bloom = bytearray(size)
        self._mask = size * 8 - 1
        self._marked = held
        for chunk in self._chunks:
            self._mark(chunk.hashes)

    def _mark(self, values: array[int]) -> None:
        bloom, mask = self._bloom, self._mask
        for h in values:
            a, b = h & mask, (h >> 32) & mask
            bloom[a >> 3] |= 1 << (a & 7)
            bloom[b >> 3] |= 1 << (b & 7)
