"""Which MQL threshold would have predicted sales' outcomes best: every integer threshold at
once, from one probe run.

Why one run is enough (the engine's semantics, engine/core): the threshold is read only
by `lifecycle.check_mql`, and until a prospect's first MQL nothing that depends on the
threshold has happened to it — its stage moves only by sales feedback (lead, recycled, sql,
customer), its score only by points, expiry, fit and `reset_score` on a rejection (which
depends on that stage), and triggers and sequences never change score or stage. So up to
the first MQL, its state under any threshold is the state of a run in which no MQL ever
happens. Such a run (the rule set with triggers, sequences and lifecycle actions removed and
an unreachable threshold) reports every check a lead or recycled prospect goes through as
(at, score before, score after): under threshold T the first MQL is the first check with
before < T <= after. Merged identities: the check of any part counts for the canonical id.

From those checks a prospect is an MQL under T when T lies in the union of its intervals
(before, after], and a true positive when T lies in the union of the intervals of the
checks at or before its first positive event. Summing these unions over prospects gives
mqls(T) and true_positives(T) for every T as a step function; F1 = 2 tp / (mqls +
positives). The best threshold is the lowest integer with the highest F1 (ties: lowest);
when no threshold gives a true positive it is the rule set's own threshold.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction

Check = tuple[int, int, int]  # (at, score before, score after), before < after


@dataclass
class Checks:
    """The MQL checks of one probe run, by the prospect id current at the check."""

    by_prospect: dict[str, list[Check]] = field(default_factory=lambda: defaultdict(list))

    def record(self, prospect: str, at: int, before: int, after: int) -> None:
        if before < after:  # a falling or flat score crosses no threshold
            self.by_prospect[prospect].append((at, before, after))

    def canonical(self, resolve: Callable[[str], str]) -> dict[str, list[Check]]:
        out: dict[str, list[Check]] = defaultdict(list)
        for prospect, checks in self.by_prospect.items():
            out[resolve(prospect)].extend(checks)
        return out


def _union(intervals: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Disjoint (lo, hi] intervals covering the same integers as `intervals`."""
    intervals.sort()
    lo, hi = intervals[0]
    for a, b in intervals[1:]:
        if a <= hi:
            hi = max(hi, b)
        else:
            yield lo, hi
            lo, hi = a, b
    yield lo, hi


@dataclass
class Curve:
    """mqls and true positives for every integer threshold, as steps: from `starts[i]` up
    to the next start, the values are `mqls[i]`, `tps[i]` (before the first start: 0, 0)."""

    starts: list[int]
    mqls: list[int]
    tps: list[int]
    positives: int

    def at(self, threshold: int) -> tuple[int, int]:
        from bisect import bisect_right

        i = bisect_right(self.starts, threshold) - 1
        return (0, 0) if i < 0 else (self.mqls[i], self.tps[i])

    def best(self) -> tuple[int, int, int] | None:
        """(threshold, mqls, tps) with the highest F1, lowest threshold on ties; None when
        no threshold gives a true positive."""
        best: tuple[Fraction, int, int, int] | None = None
        for start, m, tp in zip(self.starts, self.mqls, self.tps, strict=True):
            if tp == 0:
                continue
            f1 = Fraction(2 * tp, m + self.positives)
            if best is None or f1 > best[0]:
                best = (f1, start, m, tp)
        return None if best is None else best[1:]


def curve(checks: dict[str, list[Check]], positives: dict[str, int]) -> Curve:
    """The step function over thresholds from canonical checks and first positive times."""
    delta_m: dict[int, int] = defaultdict(int)
    delta_tp: dict[int, int] = defaultdict(int)
    for prospect, items in checks.items():
        if not items:
            continue
        for lo, hi in _union([(b, a) for _, b, a in items]):
            delta_m[lo + 1] += 1
            delta_m[hi + 1] -= 1
        won = positives.get(prospect)
        if won is None:
            continue
        early = [(b, a) for at, b, a in items if at <= won]
        if early:
            for lo, hi in _union(early):
                delta_tp[lo + 1] += 1
                delta_tp[hi + 1] -= 1
    starts = sorted(set(delta_m) | set(delta_tp))
    mqls, tps = [], []
    m = tp = 0
    for start in starts:
        m += delta_m.get(start, 0)
        tp += delta_tp.get(start, 0)
        mqls.append(m)
        tps.append(tp)
    return Curve(starts, mqls, tps, len(positives))
