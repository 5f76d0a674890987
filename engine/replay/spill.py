"""A partition's records on disk instead of in memory (`replay --workers` on this machine).

A worker appends `(key, records)` items in key order; they are pickled one by one to a
temporary file, so the worker's memory does not grow with the decisions it makes. The
object crosses to the parent as the file's path (the parent and the workers share the
machine), and the parent reads the items back once, in order, while it merges the
partitions; the file is removed once read (or when the object is dropped unread).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
from collections.abc import Iterator
from typing import IO, Any


class SpilledRecords:
    __slots__ = ("_file", "count", "path")

    def __init__(self, path: str | None = None, count: int = 0) -> None:
        self._file: IO[bytes] | None = None
        if path is None:
            fd, path = tempfile.mkstemp(prefix="leadrules-records-", suffix=".pickle")
            self._file = os.fdopen(fd, "wb", buffering=1 << 20)
        self.path = path
        self.count = count

    def append(self, item: Any) -> None:
        assert self._file is not None, "records already handed over"
        self._file.write(pickle.dumps(item, pickle.HIGHEST_PROTOCOL))
        self.count += 1

    def __len__(self) -> int:
        return self.count

    def __reduce__(self) -> tuple[Any, ...]:
        """Handed over as the path: the file is complete from here on."""
        if self._file is not None:
            self._file.close()
            self._file = None
        path, self.path = self.path, ""  # the receiver owns the file now
        return (SpilledRecords, (path, self.count))

    def __iter__(self) -> Iterator[Any]:
        if self._file is not None:
            self._file.close()
            self._file = None
        load = pickle.load
        try:
            with open(self.path, "rb") as handle:
                for _ in range(self.count):
                    yield load(handle)
        finally:
            self.discard()

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self.path = ""

    def __del__(self) -> None:
        self.discard()
