"""Personal data of one prospect: `forget` erases it, `export` hands it over (GDPR articles 17
and 15). Both are recorded in the privacy audit trail (`audit.py`).

A prospect is its canonical id and every id linked to it (anonymous ids merged by identify or
alias, followed transitively), so the events a visitor sent before telling us who they are go
with the rest. `forget` deletes in one transaction: events, the state document (traits, score,
history), alias links, timers, undelivered messages and the records of delivered ones (their
context holds traits), and events or timers set aside after a failure. The audit row keeps
who, when, the SHA-256 of the id and the row counts — not the data.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

import orjson
from sqlalchemy import Table, column, delete, inspect, table
from sqlmodel import Session, col, select

from leadrules.engine.clock import Clock
from leadrules.engine.daemon.account_store import forget_members
from leadrules.engine.daemon.audit import PrivacyAuditRow, subject_hash
from leadrules.engine.daemon.store import (
    AliasRow,
    DecisionRow,
    EventRow,
    ProspectRow,
    Store,
    TimerRow,
)
from leadrules.engine.timefmt import format_iso

# Tables of later migrations that also hold prospect rows (the shadow's records included).
OPTIONAL_TABLES = ("set_aside", "shadow_decision")


@dataclass
class Erased:
    prospect: str
    ids: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    audit_id: int | None = None

    def summary(self) -> str:
        parts = ", ".join(f"{n} {name}" for name, n in self.counts.items())
        return f"forgot {self.prospect} ({len(self.ids)} linked id(s)): {parts}"


def _canonical(session: Session, prospect: str) -> str:
    seen = {prospect}
    while (row := session.get(AliasRow, prospect)) is not None and row.canonical not in seen:
        prospect = row.canonical
        seen.add(prospect)
    return prospect


def linked_ids(session: Session, prospect: str) -> tuple[str, list[str]]:
    """(canonical id, every id that resolves to it, the given one included)."""
    canonical = _canonical(session, prospect)
    ids = {canonical, prospect}
    frontier = set(ids)
    while frontier:
        rows = session.exec(
            select(col(AliasRow.alias)).where(col(AliasRow.canonical).in_(frontier))
        ).all()
        frontier = set(rows) - ids
        ids |= frontier
    return canonical, sorted(ids)


def _optional(session: Session, name: str) -> Table | None:
    if not inspect(session.get_bind()).has_table(name):
        return None
    return table(name, column("prospect"))  # type: ignore[return-value]


def forget(
    store: Store,
    prospect: str,
    clock: Clock,
    *,
    operator: str | None = None,
    reason: str | None = None,
) -> Erased:
    """Erase everything about `prospect` and its linked ids, and record it."""
    with store.session() as session:
        canonical, ids = linked_ids(session, prospect)
        erased = Erased(canonical, ids)

        def drop(name: str, statement: Any) -> None:
            erased.counts[name] = int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]

        in_ids = col(EventRow.prospect).in_(ids)
        drop("events", delete(EventRow).where(in_ids))
        drop("states", delete(ProspectRow).where(col(ProspectRow.id).in_(ids)))
        drop(
            "aliases",
            delete(AliasRow).where(col(AliasRow.alias).in_(ids) | col(AliasRow.canonical).in_(ids)),
        )
        drop("timers", delete(TimerRow).where(col(TimerRow.prospect).in_(ids)))
        mine = col(DecisionRow.prospect).in_(ids)
        drop(
            "pending messages",
            delete(DecisionRow).where(mine, col(DecisionRow.status) == "pending"),
        )
        drop("decision records", delete(DecisionRow).where(mine))
        for name in OPTIONAL_TABLES:
            extra = _optional(session, name)
            if extra is not None:
                drop(f"{name} rows", delete(extra).where(extra.c.prospect.in_(ids)))
        erased.counts["account memberships"] = forget_members(session, ids)
        erased.audit_id = _audit(
            session, clock, "forget", canonical, erased.counts, operator, reason
        )
        session.commit()
    return erased


def _audit(
    session: Session,
    clock: Clock,
    action: str,
    prospect: str,
    counts: dict[str, int],
    operator: str | None,
    reason: str | None,
) -> int | None:
    row = PrivacyAuditRow(
        at=clock.now_us(),
        action=action,
        operator=(operator or _os_user())[:200],
        subject_sha256=subject_hash(prospect),
        counts=orjson.dumps(counts).decode(),
        reason=reason,
    )
    session.add(row)
    session.flush()
    return row.id


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _lines(kind: str, items: Iterable[dict[str, Any]], out: IO[bytes]) -> int:
    count = 0
    for item in items:
        out.write(orjson.dumps({"kind": kind, **item}) + b"\n")
        count += 1
    return count


def export(
    store: Store,
    prospect: str,
    out: IO[bytes],
    clock: Clock,
    *,
    operator: str | None = None,
    reason: str | None = None,
) -> dict[str, int]:
    """One prospect's data as JSON Lines, each line tagged by `kind`: `prospect` (the ids),
    `state` (the stored state document), `event` (as received, in arrival order) and
    `decision` (each decision record with its delivery status). Recorded in the audit."""
    with store.session() as session:
        canonical, ids = linked_ids(session, prospect)
        counts = {"prospect": _lines("prospect", [{"id": canonical, "ids": ids}], out)}
        states = session.exec(select(ProspectRow).where(col(ProspectRow.id).in_(ids))).all()
        counts["states"] = _lines(
            "state",
            ({"id": s.id, "stage": s.stage, "state": orjson.loads(s.state)} for s in states),
            out,
        )
        events = session.exec(
            select(col(EventRow.raw))
            .where(col(EventRow.prospect).in_(ids))
            .order_by(col(EventRow.seq))
        ).all()
        counts["events"] = _lines("event", ({"event": orjson.loads(r)} for r in events), out)
        decisions = session.exec(
            select(DecisionRow)
            .where(col(DecisionRow.prospect).in_(ids))
            .order_by(col(DecisionRow.seq))
        ).all()
        counts["decisions"] = _lines(
            "decision",
            (
                {
                    "key": d.key,
                    "status": d.status,
                    "attempts": d.attempts,
                    "created_at": format_iso(d.created_at),
                    "sent_at": format_iso(d.sent_at) if d.sent_at is not None else None,
                    "record": orjson.loads(d.record),
                }
                for d in decisions
            ),
            out,
        )
        _audit(session, clock, "export", canonical, counts, operator, reason)
        session.commit()
    return counts
