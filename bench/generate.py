"""A realistic, deterministic Segment event stream for benchmarks and demos.

    python -m bench.generate --events 1000000 --seed 7 --out events.jsonl.gz [--prospects N]

N prospects over a period; activity skewed (a few very active prospects, most light) and
clustered in weekday business hours; sessions of page views over a site (blog and home most,
pricing rarer, the demo page rarest); anonymous visitors of whom some identify (with traits:
title, company size, industry) or are aliased; videos, guide downloads, e-mail replies,
unsubscribes, sales feedback and deal outcomes in a plausible order. Outcomes follow intent,
as real ones do: each prospect has a hidden intent (most low, a few high) that makes buying
pages (pricing, demo, case studies), demo requests, webinars, replies and senior titles more
likely, and makes sales accept, qualify and win it more often (docs/backtest.md), so a
backtest's precision and recall mean something. About 1% of lines arrive
out of order (displaced by minutes to two days) unless `--sorted`, and 0.5% are duplicates
(an exact copy of an earlier message shortly after it). The same seed and arguments give
the same bytes. Memory stays bounded: prospects are generated a day at a time.
"""

from __future__ import annotations

import argparse
import gzip
import heapq
import itertools
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

import orjson

SITE = "https://www.example.com"
BLOG = [
    f"/blog/{s}"
    for s in (
        "lead-response-time",
        "scoring-101",
        "mql-vs-sql",
        "nurture-that-works",
        "revops-stack",
        "intent-signals",
        "sla-for-sales",
        "abm-basics",
    )
]
DOCS = [f"/docs/{s}" for s in ("getting-started", "rules", "api", "integrations", "templates")]
CASES = [f"/case-studies/{s}" for s in ("globex", "initech", "umbrella", "hooli")]
PAGES = [
    ("/", 30),
    *((p, 6) for p in BLOG),
    *((p, 4) for p in DOCS),
    ("/pricing", 8),
    ("/pricing/enterprise", 2),
    *((p, 2) for p in CASES),
    ("/demo", 1),
]
PAGE_PATHS = [p for p, _ in PAGES]
PAGE_CUM = list(itertools.accumulate(w for _, w in PAGES))
# What a prospect with buying intent looks at instead (chosen with probability = intent).
BUYER_WEIGHTS = {"/pricing": 30, "/pricing/enterprise": 12, "/demo": 10, **dict.fromkeys(CASES, 8)}
BUYER_CUM = list(itertools.accumulate(BUYER_WEIGHTS.get(p, w) for p, w in PAGES))
TITLES = [
    "VP of Sales",
    "Director of Marketing",
    "Head of Growth",
    "Chief Revenue Officer",
    "Marketing Manager",
    "Software Engineer",
    "Sales Development Rep",
    "Student",
    "Intern",
    "Operations Analyst",
    "VP Marketing",
    "Director, RevOps",
]
INDUSTRIES = ["software", "fintech", "healthcare", "manufacturing", "retail", "education"]
TRACK = [
    ("Video Watched", 6),
    ("Guide Downloaded", 5),
    ("Email Opened", 10),
    ("Email Replied", 2),
    ("Webinar Attended", 2),
    ("Demo Requested", 1),
    ("Unsubscribed", 0.4),
]
TRACK_NAMES = [n for n, _ in TRACK]
TRACK_CUM = list(itertools.accumulate(w for _, w in TRACK))
BUYER_TRACK = {"Demo Requested": 6, "Webinar Attended": 5, "Email Replied": 6, "Unsubscribed": 0.1}
BUYER_TRACK_CUM = list(itertools.accumulate(BUYER_TRACK.get(n, w) for n, w in TRACK))
SENIOR_TITLES = [t for t in TITLES if t.split()[0] in ("VP", "Director", "Head", "Chief")]
VIDEOS = {
    "case-study": [
        "How Globex doubled pipeline",
        "Initech: response time from 2 days to 5 minutes",
    ],
    "product-tour": ["leadrules in 3 minutes", "Scoring rules walkthrough"],
    "webinar": ["RevOps roundtable", "MQL vs SQL, live"],
}
GUIDES = {"lead-scoring-101": "Lead scoring 101", "nurture-playbook": "The nurture playbook"}
FEEDBACK = ["Lead Accepted", "Lead Qualified", "Deal Won", "Deal Lost", "Lead Rejected"]
REASONS = ["not-a-fit", "no-budget", "bad-timing", "student"]


@dataclass
class Prospect:
    number: int
    anonymous_id: str
    weight: float
    user_id: str | None = None
    identify_after: int = 0  # identifies after this many events (0: never)
    events: int = 0
    stage: int = 0  # 0 lead, 1 accepted, 2 qualified, 3 closed
    intent: float = 0.0  # hidden: drives buying behaviour and sales' verdicts alike
    traits: dict[str, Any] = field(default_factory=dict)


def _iso(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Generator:
    def __init__(
        self, events: int, seed: int, prospects: int | None, start: datetime, days: int
    ) -> None:
        self.rng = random.Random(seed)
        self.total = events
        self.start = start.timestamp()
        self.days = days
        count = prospects or max(10, events // 40)
        rng = self.rng
        self.prospects = []
        for n in range(count):
            prospect = Prospect(n, f"anon-{rng.getrandbits(48):012x}", rng.paretovariate(1.2))
            prospect.intent = rng.betavariate(0.7, 3.0)
            if rng.random() < 0.55:
                prospect.identify_after = 1 + int(rng.expovariate(1 / 4))
            self.prospects.append(prospect)
        self.cum_weights = list(itertools.accumulate(p.weight for p in self.prospects))
        self.seq = 0

    def _message_id(self) -> str:
        self.seq += 1
        return f"{self.rng.getrandbits(64):016x}-{self.seq}"

    def _base(self, p: Prospect, kind: str, ts: float) -> dict[str, Any]:
        msg: dict[str, Any] = {"type": kind, "messageId": self._message_id(), "timestamp": _iso(ts)}
        if p.user_id is not None:
            msg["userId"] = p.user_id
        msg["anonymousId"] = p.anonymous_id
        return msg

    def _identify(self, p: Prospect, ts: float) -> dict[str, Any]:
        rng = self.rng
        p.user_id = f"u-{p.number}"
        first = rng.choice(
            ["ann", "bob", "cara", "dan", "eve", "femi", "gus", "hana", "ivan", "jo"]
        )
        p.traits = {
            "email": f"{first}.{p.number}@example.org",
            "name": f"{first.title()} {p.number}",
            "title": rng.choice(SENIOR_TITLES if rng.random() < p.intent else TITLES),
            "company": {
                "name": f"Company {p.number % 997}",
                "size": int(rng.paretovariate(0.9) * 20),
            },
            "industry": rng.choice(INDUSTRIES),
        }
        if rng.random() < 0.1:  # some sites call alias instead
            return {
                "type": "alias",
                "messageId": self._message_id(),
                "timestamp": _iso(ts),
                "previousId": p.anonymous_id,
                "userId": p.user_id,
            }
        msg = self._base(p, "identify", ts)
        msg["traits"] = p.traits
        return msg

    def _session(self, p: Prospect, ts: float) -> Iterator[tuple[float, dict[str, Any]]]:
        rng = self.rng
        for _ in range(1 + int(rng.expovariate(1 / 2.5))):
            ts += rng.uniform(10, 240)
            p.events += 1
            if p.identify_after and p.user_id is None and p.events >= p.identify_after:
                yield ts, self._identify(p, ts)
                continue
            roll = rng.random()
            # Sales sees engaged, identified prospects, high intent ones more often; its
            # verdicts follow their intent.
            if (
                p.user_id is not None
                and p.stage < 3
                and p.events >= 4
                and (0.97 <= roll < 0.99 or roll < 0.04 * p.intent)
            ):
                msg = self._base(p, "track", ts)
                yes = rng.random()
                if p.stage == 0:
                    name = "Lead Accepted" if yes < 0.15 + 0.8 * p.intent else "Lead Rejected"
                elif p.stage == 1:
                    name = "Lead Qualified" if yes < 0.2 + 0.75 * p.intent else "Lead Rejected"
                else:
                    name = "Deal Won" if yes < 0.15 + 0.7 * p.intent else "Deal Lost"
                p.stage = 3 if name in ("Deal Won", "Deal Lost", "Lead Rejected") else p.stage + 1
                msg["event"] = name
                if name == "Lead Rejected":
                    msg["properties"] = {"reason": rng.choice(REASONS)}
            elif roll < 0.78:
                pages = BUYER_CUM if rng.random() < p.intent else PAGE_CUM
                path = rng.choices(PAGE_PATHS, cum_weights=pages)[0]
                msg = self._base(p, "page", ts)
                msg["name"] = path.strip("/").split("/")[0].title() or "Home"
                msg["properties"] = {
                    "path": path,
                    "url": SITE + path,
                    "title": msg["name"],
                    "referrer": rng.choice(
                        ["", "https://www.google.com/", "https://news.ycombinator.com/"]
                    ),
                }
            elif roll < 0.97 or p.user_id is None:
                tracks = BUYER_TRACK_CUM if rng.random() < p.intent else TRACK_CUM
                name = rng.choices(TRACK_NAMES, cum_weights=tracks)[0]
                msg = self._base(p, "track", ts)
                msg["event"] = name
                if name == "Video Watched":
                    category = (
                        "case-study"
                        if rng.random() < p.intent
                        else rng.choice(["case-study", "product-tour", "webinar"])
                    )
                    msg["properties"] = {
                        "category": category,
                        "title": rng.choice(VIDEOS[category]),
                    }
                elif name == "Guide Downloaded":
                    guide = rng.choice(list(GUIDES))
                    msg["properties"] = {"guide": guide, "title": GUIDES[guide]}
            else:
                msg = self._base(p, "group", ts)
                msg["groupId"] = f"g-{p.number % 997}"
                msg["traits"] = {
                    "name": f"Company {p.number % 997}",
                    "industry": rng.choice(INDUSTRIES),
                }
            yield ts, msg

    def _day(self, day: int, budget: int) -> list[tuple[float, int, dict[str, Any]]]:
        """About `budget` events of one day, in time order."""
        rng = self.rng
        midnight = self.start + day * 86400
        weekday = datetime.fromtimestamp(midnight, UTC).weekday() < 5
        out: list[tuple[float, int, dict[str, Any]]] = []
        while len(out) < budget:
            p = rng.choices(self.prospects, cum_weights=self.cum_weights)[0]
            hour = rng.gauss(14, 3) if weekday or rng.random() < 0.3 else rng.uniform(0, 24)
            ts = midnight + min(max(hour, 0), 23.9) * 3600
            for when, msg in self._session(p, ts):
                out.append((when, len(out), msg))
        out.sort(key=lambda item: (item[0], item[1]))
        return out[:budget]

    def messages(
        self, *, shuffle: float = 0.01, duplicates: float = 0.005
    ) -> Iterator[dict[str, Any]]:
        """Exactly `total` messages: displaced ones and duplicates included."""
        rng = self.rng
        per_day = [
            self.total // self.days + (1 if d < self.total % self.days else 0)
            for d in range(self.days)
        ]
        delayed: list[tuple[float, int, dict[str, Any]]] = []  # (arrival time, order, message)
        order = 0
        written = 0
        for day, budget in enumerate(per_day):
            for ts, _, msg in self._day(day, budget):
                while delayed and delayed[0][0] <= ts and written < self.total:
                    yield heapq.heappop(delayed)[2]
                    written += 1
                if written >= self.total:
                    return
                order += 1
                roll = rng.random()
                if roll < shuffle:  # arrives late: written later, out of timestamp order
                    heapq.heappush(delayed, (ts + rng.uniform(60, 2 * 86400), order, msg))
                    continue
                yield msg
                written += 1
                if roll < shuffle + duplicates and written < self.total:  # a retried delivery
                    heapq.heappush(delayed, (ts + rng.uniform(1, 300), order, msg))
        while delayed and written < self.total:
            yield heapq.heappop(delayed)[2]
            written += 1


def generate(
    n_events: int,
    seed: int = 7,
    *,
    prospects: int | None = None,
    start: str = "2026-01-01",
    days: int = 365,
    shuffle: float = 0.01,
    duplicates: float = 0.005,
) -> Iterator[dict[str, Any]]:
    """The generator as an iterator of Segment messages."""
    begin = datetime.fromisoformat(start).replace(tzinfo=UTC)
    yield from Generator(n_events, seed, prospects, begin, days).messages(
        shuffle=shuffle, duplicates=duplicates
    )


def _open(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdout.buffer
    if path.endswith(".gz"):
        return gzip.open(path, "wb", compresslevel=2)  # type: ignore[return-value]
    return open(path, "wb")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Generate a realistic Segment event stream (JSON Lines)."
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--prospects", type=int, default=None, help="default: events / 40")
    parser.add_argument("--start", default="2026-01-01")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--sorted", action="store_true", help="no out-of-order lines")
    parser.add_argument("--shuffle-frac", type=float, default=0.01)
    parser.add_argument("--duplicate-frac", type=float, default=0.005)
    parser.add_argument("--out", default="-")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    out = _open(args.out)
    count = 0
    dumps = orjson.dumps
    buffer: list[bytes] = []
    for msg in generate(
        args.events,
        args.seed,
        prospects=args.prospects,
        start=args.start,
        days=args.days,
        shuffle=0.0 if args.sorted else args.shuffle_frac,
        duplicates=args.duplicate_frac,
    ):
        buffer.append(dumps(msg))
        count += 1
        if len(buffer) >= 10_000:
            out.write(b"\n".join(buffer) + b"\n")
            buffer.clear()
    if buffer:
        out.write(b"\n".join(buffer) + b"\n")
    if out is not sys.stdout.buffer:
        out.close()
    seconds = time.perf_counter() - started
    print(
        f"{count} events in {seconds:.1f} s ({count / seconds:,.0f}/s) to {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
