"""Which `messageId`s were seen, in little memory: replay's duplicate filter.

The contract ignores a second message with the same `messageId`, however far apart. Keeping
every id as a string costs about 110 bytes each (a gigabyte at 10M events); here each costs
about 11 bytes: ids are hashed to 64 bits (a collision between two real ids is about
n²/2⁶⁵ likely: 3·10⁻⁶ at 10M), kept in a set while recent, and frozen into sorted arrays
(merged like a binary counter, so there are few) behind one Bloom filter that spares most
lookups the binary searches.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left

_PLAIN_LIMIT = 1_000_000  # up to this many ids, a plain set of strings (fastest)
_RECENT = 1 << 18  # then: hashes held in a set before they are frozen
_BLOOM_BITS_PER_ID = 12
_BLOOM_BYTES = 1 << 20  # the Bloom filter's first size (a power of two); it doubles as needed


# Python's string hash is randomised per process but stable within one, which is all a
# replay needs; it is 64 bits wide on the platforms leadrules runs on.
_hash = hash


class SeenIds:
    """`recent_limit` and `bloom_bytes` are the sizes above; tests make them small so that a
    few thousand ids go through every stage."""

    def __init__(
        self,
        plain_limit: int = _PLAIN_LIMIT,
        *,
        recent_limit: int = _RECENT,
        bloom_bytes: int = _BLOOM_BYTES,
    ) -> None:
        self._plain: set[str] | None = set()
        self._plain_limit = plain_limit
        self._recent_limit = recent_limit
        self._bloom_bytes = bloom_bytes
        self._recent: set[int] = set()
        self._levels: list[array[int]] = []  # sorted, largest first
        self._bloom = bytearray(bloom_bytes)
        self._mask = bloom_bytes * 8 - 1
        self._bloom_ids = 0

    def __len__(self) -> int:
        plain = len(self._plain) if self._plain is not None else 0
        return plain + len(self._recent) + sum(len(level) for level in self._levels)

    def add(self, message_id: str) -> bool:
        """Remember `message_id`; False when it was seen before."""
        plain = self._plain
        if plain is not None:
            if message_id in plain:
                return False
            plain.add(message_id)
            if len(plain) >= self._plain_limit:
                self._compact()
            return True
        h = _hash(message_id)
        if h in self._recent or (self._levels and self._frozen(h)):
            return False
        self._recent.add(h)
        if len(self._recent) >= self._recent_limit:
            self._freeze()
        return True

    def _compact(self) -> None:
        """Switch from strings to hashes: memory stays bounded from here on."""
        assert self._plain is not None
        hashes = [_hash(m) for m in self._plain]
        self._plain = None
        step = self._recent_limit
        for start in range(0, len(hashes), step):
            self._recent = set(hashes[start : start + step])
            self._freeze()

    def _frozen(self, h: int) -> bool:
        bloom, mask = self._bloom, self._mask
        a, b = h & mask, (h >> 32) & mask
        if not (bloom[a >> 3] >> (a & 7)) & 1 or not (bloom[b >> 3] >> (b & 7)) & 1:
            return False
        for level in self._levels:
            i = bisect_left(level, h)
            if i < len(level) and level[i] == h:
                return True
        return False

    def _freeze(self) -> None:
        chunk = array("q", sorted(self._recent))
        self._recent = set()
        self._levels.append(chunk)
        # Merge while the newest level is as large as the one before: few levels to search.
        while len(self._levels) > 1 and len(self._levels[-1]) >= len(self._levels[-2]):
            newer = self._levels.pop()
            older = self._levels.pop()
            self._levels.append(array("q", sorted(older + newer)))
        self._bloom_ids += len(chunk)
        if self._bloom_ids * _BLOOM_BITS_PER_ID > len(self._bloom) * 8:
            self._rebuild_bloom()
        else:
            self._mark(chunk)

    def _rebuild_bloom(self) -> None:
        size = self._bloom_bytes
        while size * 8 < self._bloom_ids * _BLOOM_BITS_PER_ID * 2:
            size *= 2
        self._bloom = bytearray(size)
        self._mask = size * 8 - 1
        for level in self._levels:
            self._mark(level)

    def _mark(self, values: array[int]) -> None:
        bloom, mask = self._bloom, self._mask
        for h in values:
            a, b = h & mask, (h >> 32) & mask
            bloom[a >> 3] |= 1 << (a & 7)
            bloom[b >> 3] |= 1 << (b & 7)
