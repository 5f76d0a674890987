"""Prospects in fixed partitions, so that several daemons share one PostgreSQL
(docs/scale.md, "Several workers").

An id's partition is a hash of the id (`partition_of`, the same function in Python and in
SQL), except for an id merged into another prospect: it is evaluated in the partition of its
root, which the `route` table records. An event belongs to the partition of its prospect's
root and, when it is an `identify` or `alias` that may merge a second id (`event.link`), to
that id's too: such an event is evaluated only once every earlier event of both partitions
is, and before any later one (`plan`), under the locks of both.

Every transaction that evaluates events or timers of a set of partitions first locks their
`partition_state` rows in partition order (`lock`): two transactions that touch a common
partition run one after the other, and sorted locking cannot deadlock. Leases
(`daemon.leases`) only say which worker looks at which partitions; the locks keep the
evaluation right even while a lease moves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Boolean, literal_column, text
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

PARTITIONS = 32

# `partition_of` in SQL: the first 28 bits of the id's MD5, modulo the partitions.
_PART = "((('x' || substr(md5({0}), 1, 7))::bit(28)::int) % " + str(PARTITIONS) + ")"


def partition_of(prospect: str) -> int:
    """The partition of an id that was never merged into another."""
    return int(hashlib.md5(prospect.encode()).hexdigest()[:7], 16) % PARTITIONS


@dataclass(frozen=True, slots=True)
class Pending:
    """A pending event and the partitions it touches."""

    seq: int
    message_id: str
    ts: int
    received_at: int
    raw: str
    parts: frozenset[int]


def ensure(session: Session) -> None:
    """Create the partitions' rows (once per database)."""
    session.execute(
        text(
            "INSERT INTO partition_state (part) SELECT generate_series(0, :last) "
            "ON CONFLICT (part) DO NOTHING"
        ),
        {"last": PARTITIONS - 1},
    )
    session.commit()


def lock(session: Session, parts: Iterable[int]) -> int | None:
    """Lock the partitions' rows for this transaction, in partition order; the latest
    receive time evaluated in any of them (None if none yet)."""
    rows = session.execute(
        text(
            "SELECT last_received FROM partition_state WHERE part = ANY(:parts) "
            "ORDER BY part FOR UPDATE"
        ),
        {"parts": sorted(parts)},
    ).all()
    seen = [row[0] for row in rows if row[0] is not None]
    return max(seen) if seen else None


def advance(session: Session, parts: Iterable[int], received: int) -> None:
    """Record that the events received up to `received` were evaluated in `parts`."""
    session.execute(
        text(
            "UPDATE partition_state SET last_received = :received WHERE part = ANY(:parts) "
            "AND (last_received IS NULL OR last_received < :received)"
        ),
        {"parts": sorted(parts), "received": received},
    )


_PENDING = (
    "SELECT e.seq, e.message_id, e.ts, e.received_at, e.raw, "
    "COALESCE(r1.part, {p1}) AS p1, "
    "CASE WHEN e.link IS NULL THEN NULL ELSE COALESCE(r2.part, {p2}) END AS p2 "
    "FROM event e LEFT JOIN route r1 ON r1.id = e.prospect "
    "LEFT JOIN route r2 ON r2.id = e.link "
    "WHERE e.status = 'pending' {where} ORDER BY e.seq LIMIT :limit"
).format(
    p1=_PART.format("e.prospect"),
    p2=_PART.format("e.link"),
    where="{where}",
)
_PENDING_ALL = text(_PENDING.format(where=""))
_PENDING_SOME = text(
    _PENDING.format(
        where="AND (COALESCE(r1.part, {p1}) = ANY(:parts) OR (e.link IS NOT NULL "
        "AND COALESCE(r2.part, {p2}) = ANY(:parts)))".format(
            p1=_PART.format("e.prospect"), p2=_PART.format("e.link")
        )
    )
)


def pending(session: Session, parts: frozenset[int], limit: int) -> list[Pending]:
    """The pending events that touch `parts`, in the order received (their `seq`)."""
    if len(parts) == PARTITIONS:
        result = session.execute(_PENDING_ALL, {"limit": limit})
    else:
        result = session.execute(_PENDING_SOME, {"parts": sorted(parts), "limit": limit})
    return [
        Pending(
            seq,
            message_id,
            ts,
            received_at,
            raw,
            frozenset((p1,) if p2 is None else (p1, p2)),
        )
        for seq, message_id, ts, received_at, raw, p1, p2 in result.all()
    ]


def plan(rows: Sequence[Pending], held: frozenset[int]) -> tuple[list[Pending], Pending | None]:
    """Which of `rows` (in the order received) this worker may evaluate now, in one
    transaction over `held`: every event whose partitions are all held, unless an earlier
    event it shares a partition with must wait. The first event that also touches a
    partition outside `held` waits (it is returned second: a pass that also locks its
    partitions can take it), and so does every later event that shares a partition with
    it, so each partition's events keep their order.

    A merge chosen here joins its two partitions for the rest of the rows: their
    partitions were read before it ran, so a later event of the merged id still shows the
    id's old partition. Once either partition of a chosen merge waits, both do."""
    blocked: set[int] = set()
    joined: list[frozenset[int]] = []  # the partitions of each merge chosen
    chosen: list[Pending] = []
    cross: Pending | None = None
    for row in rows:
        if row.parts.isdisjoint(blocked) and row.parts <= held:
            chosen.append(row)
            if len(row.parts) > 1:
                joined.append(row.parts)
            continue
        if cross is None and row.parts.isdisjoint(blocked):
            cross = row
        blocked |= row.parts
        grew = True
        while grew:
            grew = False
            for parts in joined:
                if not parts.isdisjoint(blocked) and not parts <= blocked:
                    blocked |= parts
                    grew = True
    return chosen, cross


def timers_of(parts: frozenset[int]) -> ColumnElement[bool] | None:
    """A condition on the timer table: the timers of prospects in `parts` (None: all)."""
    if len(parts) == PARTITIONS:
        return None
    expression = (
        "COALESCE((SELECT r.part FROM route r WHERE r.id = timer.prospect), {part}) IN ({parts})"
    ).format(part=_PART.format("timer.prospect"), parts=", ".join(str(p) for p in sorted(parts)))
    return literal_column(expression, Boolean)


def record_links(session: Session, links: list[tuple[str, str]]) -> None:
    """After `alias` was merged into `canonical` (a root): the alias, and every id routed to
    it, are evaluated in the partition of `canonical` from now on."""
    for alias, canonical in links:
        part = partition_of(canonical)
        session.execute(
            text(
                "INSERT INTO route (id, root, part) VALUES (:id, :root, :part) "
                "ON CONFLICT (id) DO UPDATE SET root = excluded.root, part = excluded.part"
            ),
            {"id": alias, "root": canonical, "part": part},
        )
        session.execute(
            text("UPDATE route SET root = :root, part = :part WHERE root = :alias"),
            {"root": canonical, "part": part, "alias": alias},
        )
