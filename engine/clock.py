"""The only place that reads the wall clock. Everything else takes a `Clock`.

Times inside the engine are integer microseconds since the Unix epoch (UTC): exact, cheap to
compare, and free of time-zone surprises.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_us(self) -> int:
        """Current time in microseconds since the epoch, UTC."""
        ...


class WallClock:
    """Real time, for the daemon."""

    def now_us(self) -> int:
        return time.time_ns() // 1000


class SimulatedClock:
    """Time that only moves when told to: replay and tests."""

    def __init__(self, start_us: int = 0) -> None:
        self._now = start_us

    def now_us(self) -> int:
        return self._now

    def advance_to(self, t_us: int) -> None:
        """Move forward to `t_us`; never backwards."""
        if t_us > self._now:
            self._now = t_us
