"""`leadrules backtest --workers N` (and `--cluster`): the backtest's lanes run in the
replay's partitions (engine/replay/workers.py), and the partitions' findings are merged.

Every figure of a backtest is per prospect before it is summed (first MQL, MQL detail,
outcomes, MQL checks) or a plain count (decisions, weekly counts, sequences), and a
partition holds whole merged identities, so the merge is a union of disjoint dicts and a
sum of counters: the result (and the `--json` document) is the one process's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.replay.backtest import BacktestRun, Outcomes, Side, lanes_for
from leadrules.engine.replay.lanes import LanePass, PassStats
from leadrules.engine.replay.memory_world import MemoryWorld
from leadrules.engine.replay.pool import Progress, run_local
from leadrules.engine.replay.shares import Partitioned, ordered_rejections
from leadrules.engine.replay.sources import EventFile, OutOfOrder, Rejected

__all__ = ["BacktestJob", "run_backtest_workers"]


@dataclass
class _SidePart:
    """What one side found in one partition (picklable: plain dicts and counters)."""

    first_mql: dict[str, int]
    mql_detail: dict[str, dict[str, Any]]
    by_action: Counter[str]
    sequences: Counter[str]
    weekly: dict[int, Counter[str]]
    checks: dict[str, list[tuple[int, int, int]]]

    @classmethod
    def of(cls, side: Side) -> _SidePart:
        return cls(
            side.first_mql,
            side.mql_detail,
            side.by_action,
            side.sequences,
            dict(side.weekly),
            dict(side.checks.by_prospect),
        )

    def into(self, side: Side, checks: bool) -> None:
        side.first_mql.update(self.first_mql)
        side.mql_detail.update(self.mql_detail)
        side.by_action.update(self.by_action)
        side.sequences.update(self.sequences)
        for week, counts in self.weekly.items():
            side.weekly[week].update(counts)
        if checks:
            for prospect, items in self.checks.items():
                side.checks.by_prospect[prospect].extend(items)


@dataclass
class _Part:
    sides: tuple[_SidePart, _SidePart]
    shared_checks: bool
    outcomes: Outcomes
    stats: PassStats
    aliases: dict[str, str]
    rejected: list[Rejected]


@dataclass
class BacktestJob:
    """A backtest in partitions (a `pool.Job`): picklable, for Dask workers too."""

    parts: Partitioned
    baseline: RuleSet
    candidate: RuleSet

    @property
    def partitions(self) -> int:
        return self.parts.partitions

    @property
    def until(self) -> int | None:
        return None

    def open(self, me: int, progress: Progress) -> _BacktestTask:
        return _BacktestTask(self, me, progress)


class _BacktestTask:
    def __init__(self, job: BacktestJob, me: int, progress: Progress) -> None:
        self.job, self.me, self.progress = job, me, progress

    def run(self) -> int | None:
        try:
            return self._run(False)
        except OutOfOrder:
            last = self._run(True)
            self.run_.stats.restarted = True
            return last

    def _run(self, full_sort: bool) -> int | None:
        self.sides, self.outcomes, lanes = lanes_for(self.job.baseline, self.job.candidate)
        self.lanes = lanes
        self.rejected: list[Rejected] = []
        self.run_ = LanePass(lanes, self.outcomes.observe)
        progress = self.progress if not full_sort else _ignore
        items = self.job.parts.items(self.me, self.rejected.append, full_sort, progress)
        return self.run_.events(items)

    def finish(self, end: int | None) -> _Part:
        self.run_.finish(end)
        base, cand = self.sides
        shared = cand.checks is base.checks
        return _Part(
            (_SidePart.of(base), _SidePart.of(cand)),
            shared,
            self.outcomes,
            self.run_.stats,
            self.lanes[0].world.aliases,
            self.rejected,
        )


def _ignore(_: int) -> None:
    pass


def merge(parts: list[_Part], baseline: RuleSet, candidate: RuleSet) -> BacktestRun:
    """The partitions' findings as the one-process `BacktestRun`."""
    sides = [Side("baseline", baseline), Side("candidate", candidate)]
    shared = bool(parts) and parts[0].shared_checks
    if shared:
        sides[1].checks = sides[0].checks
    outcomes = Outcomes()
    stats = PassStats()
    world = MemoryWorld()
    for part in parts:
        part.sides[0].into(sides[0], True)
        part.sides[1].into(sides[1], not shared)
        outcomes.first_seen.update(part.outcomes.first_seen)
        outcomes.first_positive.update(part.outcomes.first_positive)
        outcomes.rejections.extend(part.outcomes.rejections)
        found = part.stats
        stats.events += found.events
        stats.duplicates += found.duplicates
        if found.first_at is not None:
            stats.first_at = (
                found.first_at if stats.first_at is None else min(stats.first_at, found.first_at)
            )
        if found.last_at is not None:
            stats.last_at = (
                found.last_at if stats.last_at is None else max(stats.last_at, found.last_at)
            )
        stats.restarted = stats.restarted or found.restarted
        world.aliases.update(part.aliases)
    return BacktestRun(sides[0], sides[1], outcomes, stats, world.resolve)


def run_backtest_workers(
    sources: list[EventFile],
    baseline: RuleSet,
    candidate: RuleSet,
    *,
    workers: int,
    on_reject: Any = None,
    on_bytes: Progress | None = None,
    cluster: str | None = None,
) -> BacktestRun:
    """`backtest.run_backtest` on `workers` processes (or on the Dask workers of the
    scheduler at `cluster`): the same `BacktestRun`."""
    if cluster is not None:
        from leadrules.engine.replay.cluster import connect, run_cluster, workers_of

        client = connect(cluster)
        try:
            partitions = workers if workers > 0 else workers_of(client)
            job = BacktestJob(
                Partitioned.of(sources, partitions, None, on_bytes), baseline, candidate
            )
            results, _ = run_cluster(client, job, on_bytes)
        finally:
            client.close()
    else:
        job = BacktestJob(Partitioned.of(sources, workers, None, on_bytes), baseline, candidate)
        results, _ = run_local(job, on_bytes)
    for item in ordered_rejections(sources, [part.rejected for part in results]):
        if on_reject is not None:
            on_reject(item)
    return merge(results, baseline, candidate)
