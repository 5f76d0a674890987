"""Events and timers taken out of evaluation, so that one bad item never stalls the rest.

An item whose evaluation raises is *held* (with the error and a short traceback); the
operator lists it, fixes the cause (usually the rules), and retries it or discards it
(`leadrules quarantine list|retry|discard`). A timer whose sequence or trigger a rule reload
removed is recorded as *obsolete*, with the reason, and never retried.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, update
from sqlmodel import Session, col, select

from leadrules.engine.core.events import Event
from leadrules.engine.core.state import Timer
from leadrules.engine.daemon.db_world import timer_payload
from leadrules.engine.daemon.store import EventRow, SetAsideRow, Store, TimerRow

HELD, RETRIED, DISCARDED, OBSOLETE = "held", "retried", "discarded", "obsolete"
ALL = (HELD, RETRIED, DISCARDED, OBSOLETE)
TRACE_FRAMES = 8


@dataclass(frozen=True)
class Failure:
    """Why an item was held: the exception, and where it was raised (innermost frames)."""

    error: str
    trace: str

    @classmethod
    def of(cls, exc: BaseException) -> Failure:
        frames = traceback.extract_tb(exc.__traceback__)[-TRACE_FRAMES:]
        trace = "".join(traceback.format_list(frames)).rstrip()
        return cls(f"{type(exc).__name__}: {exc}", trace)


def item_key(item: Event | Timer) -> str:
    return item.message_id if isinstance(item, Event) else item.key


def record(
    item: Event | Timer, status: str, error: str, trace: str | None, now: int
) -> dict[str, Any]:
    """A `set_aside` row for `item`."""
    if isinstance(item, Event):
        kind, due, payload = "event", None, None
    else:
        kind, due, payload = "timer", item.due, timer_payload(item).decode()
    return {
        "kind": kind,
        "key": item_key(item),
        "prospect": item.prospect,
        "due_at": due,
        "payload": payload,
        "status": status,
        "error": error,
        "trace": trace,
        "created_at": now,
    }


def write(session: Session, rows: list[dict[str, Any]]) -> None:
    """Store set-aside rows; a held event's row in the log is marked `held` too."""
    if not rows:
        return
    session.execute(insert(SetAsideRow), rows)
    events = [r["key"] for r in rows if r["kind"] == "event"]
    if events:
        session.execute(
            update(EventRow).where(col(EventRow.message_id).in_(events)).values(status=HELD)
        )


def listed(
    store: Store, statuses: tuple[str, ...] = (HELD,), limit: int = 100
) -> list[SetAsideRow]:
    with store.session() as session:
        return list(
            session.exec(
                select(SetAsideRow)
                .where(col(SetAsideRow.status).in_(statuses))
                .order_by(col(SetAsideRow.id))
                .limit(limit)
            ).all()
        )


def _held(session: Session, ids: list[int] | None) -> list[SetAsideRow]:
    query = select(SetAsideRow).where(col(SetAsideRow.status) == HELD)
    if ids is not None:
        query = query.where(col(SetAsideRow.id).in_(ids))
    return list(session.exec(query.order_by(col(SetAsideRow.id))).all())


def retry(store: Store, ids: list[int] | None = None) -> int:
    """Put held items (all, or those with `ids`) back: an event is evaluated again by the
    next pass (as a late event if newer ones were evaluated meanwhile), a timer fires at
    the next tick with its original due time."""
    with store.session() as session:
        rows = _held(session, ids)
        for row in rows:
            if row.kind == "event":
                session.execute(
                    update(EventRow)
                    .where(col(EventRow.message_id) == row.key)
                    .values(status="pending")
                )
            else:
                assert row.due_at is not None and row.payload is not None
                exists = session.exec(select(TimerRow.seq).where(col(TimerRow.key) == row.key))
                if exists.first() is None:
                    session.execute(
                        insert(TimerRow).values(
                            key=row.key,
                            due_at=row.due_at,
                            prospect=row.prospect,
                            payload=row.payload,
                        )
                    )
            row.status = RETRIED
            session.add(row)
        session.commit()
        return len(rows)


def discard(store: Store, ids: list[int] | None = None) -> int:
    """Give up on held items: they are never evaluated (a discarded event stays in the log,
    marked `discarded`)."""
    with store.session() as session:
        rows = _held(session, ids)
        for row in rows:
            if row.kind == "event":
                session.execute(
                    update(EventRow)
                    .where(col(EventRow.message_id) == row.key)
                    .values(status=DISCARDED)
                )
            row.status = DISCARDED
            session.add(row)
        session.commit()
        return len(rows)
