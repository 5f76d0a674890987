"""What a replay tells the person at the terminal: a progress bar (only when stderr is a
terminal) and a summary at the end (always on stderr)."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.progress import Progress as RichProgress

from leadrules.engine.replay.dry_run import ReplayStats
from leadrules.engine.timefmt import format_at


class Progress:
    """A byte-based progress bar over the input files; silent when not on a terminal."""

    def __init__(self, sources: list[Any], *, enabled: bool = True, passes: int = 1) -> None:
        """`passes`: how many times the input is read (a replay on several workers reads it
        once to partition it, then the workers read it between them)."""
        self._bar: RichProgress | None = None
        self._task: Any = None
        if enabled and sys.stderr.isatty():
            total = sum(s.size() for s in sources) * passes
            self._bar = RichProgress(
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._task = self._bar.add_task("replaying", total=total or None)

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)


def summary_lines(stats: ReplayStats) -> list[str]:
    span = ""
    if stats.first_at is not None and stats.last_at is not None:
        span = f" from {format_at(stats.first_at)} to {format_at(stats.last_at)}"
    lines = [
        f"events: {stats.events} processed{span}; {stats.duplicates} duplicates ignored, "
        f"{stats.lines_rejected} lines rejected"
        + (f", {stats.after_until} after --until" if stats.after_until else ""),
        f"prospects: {stats.prospects}; MQLs: {stats.mqls}; timers fired: {stats.timers}"
        + (
            f"; accounts: {stats.accounts}; account MQLs: {stats.account_mqls}"
            if stats.accounts
            else ""
        ),
        f"decisions: {stats.decisions}"
        + "".join(f"; {action} {n}" for action, n in sorted(stats.by_action.items())),
    ]
    for rule, n in sorted(stats.by_rule.items(), key=lambda item: (-item[1], item[0])):
        lines.append(f"  {n:>8}  {rule}")
    lines.append(
        f"speed: {stats.events_per_second:,.0f} events/s ({stats.seconds:.2f} s)"
        + (" — input was out of order and was sorted in memory" if stats.restarted else "")
    )
    return lines


def print_summary(stats: ReplayStats) -> None:
    for line in summary_lines(stats):
        print(line, file=sys.stderr)
