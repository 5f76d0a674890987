"""The daemon's event log: messages stored durably before the answer (`store_events`), and
what is read back from the database (`export`, `counts`, `decisions`, `pending_timers`) for
the CLI, `/health` and the tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import IO, Any

import orjson
from sqlalchemy import func, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select

from leadrules.engine.core.events import Event, normalize
from leadrules.engine.core.state import Timer
from leadrules.engine.daemon import quarantine
from leadrules.engine.daemon.db_world import DbWorld
from leadrules.engine.daemon.store import DecisionRow, EventRow, SetAsideRow, Store, TimerRow
from leadrules.engine.errors import EventError
from leadrules.engine.timefmt import format_iso


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)  # {index, field, message}


def merge_link(event: Event) -> str | None:
    """The id an `identify` or `alias` may merge into the event's prospect (what
    `core.evaluator` links): stored with the event, so that a worker of several sees it in
    the partitions of both ids (`daemon.partitions`)."""
    if event.type == "identify" and event.user_id and event.anonymous_id:
        return event.anonymous_id
    if event.type == "alias" and event.previous_id:
        return event.previous_id
    return None


def _stored_copy(raw: dict[str, Any], message_id: str, ts: int) -> dict[str, Any]:
    """The message as stored: a filled-in `messageId` and `timestamp` are written into it,
    so that exporting the log and replaying it gives the same decisions."""
    if raw.get("messageId") and (raw.get("timestamp") or raw.get("originalTimestamp")):
        return raw
    copy = dict(raw)
    copy["messageId"] = message_id
    if not (raw.get("timestamp") or raw.get("originalTimestamp")):
        copy["timestamp"] = format_iso(ts)
    return copy


def store_events(
    store: Store,
    messages: list[Any],
    received: int,
    *,
    refuse_future: bool,
    notify: str | None = None,
) -> IngestResult:
    """Validate `messages` and insert the valid ones, received at `received`, in one
    transaction. Invalid ones are reported by index and field; a known messageId is a
    duplicate. `refuse_future`: refuse timestamps too far after `received`. `notify`: a
    PostgreSQL channel told, when new events commit, that there are some (`daemon.leases`:
    the other workers)."""
    result = IngestResult()
    rows = []
    for index, raw in enumerate(messages):
        try:
            event = normalize(
                raw,
                default_message_id=uuid.uuid4().hex,
                default_ts=received,
                received_at=received if refuse_future else None,
            )
        except EventError as exc:
            result.errors.append({"index": index, "field": exc.field, "message": exc.message})
            continue
        stored = _stored_copy(raw, event.message_id, event.ts)
        rows.append(
            {
                "message_id": event.message_id,
                "prospect": event.prospect,
                "ts": event.ts,
                "received_at": received,
                "raw": orjson.dumps(stored).decode(),
                "status": "pending",
                "link": merge_link(event),
            }
        )
    if rows:
        unique = list({row["message_id"]: row for row in reversed(rows)}.values())[::-1]
        result.duplicates += len(rows) - len(unique)
        insert = pg_insert if store.dialect == "postgresql" else sqlite_insert
        stmt = (
            insert(EventRow)
            .on_conflict_do_nothing(index_elements=["message_id"])
            .returning(col(EventRow.message_id))
        )
        with store.session() as session:
            # executemany with RETURNING: one cached statement, rows sent in bulk.
            inserted = len(session.execute(stmt, unique).all())
            if inserted and notify is not None:
                session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": notify})
            session.commit()
        result.accepted += inserted
        result.duplicates += len(unique) - inserted
    return result


def counts(store: Store) -> dict[str, int]:
    """Pending events, outbox depth, timers, dead letters and held items."""
    with store.session() as session:
        pending = session.exec(
            select(func.count()).select_from(EventRow).where(col(EventRow.status) == "pending")
        ).one()
        outbox = session.exec(
            select(func.count())
            .select_from(DecisionRow)
            .where(col(DecisionRow.status) == "pending")
        ).one()
        timers = session.exec(select(func.count()).select_from(TimerRow)).one()
        dead = session.exec(
            select(func.count()).select_from(DecisionRow).where(col(DecisionRow.status) == "dead")
        ).one()
        held = session.exec(
            select(func.count())
            .select_from(SetAsideRow)
            .where(col(SetAsideRow.status) == quarantine.HELD)
        ).one()
    return {
        "pending_events": pending,
        "outbox_depth": outbox,
        "timers": timers,
        "dead_letters": dead,
        "set_aside": held,
    }


def decisions(store: Store) -> list[dict[str, Any]]:
    """Every decision record, in the order decided."""
    with store.session() as session:
        rows = session.exec(select(col(DecisionRow.record)).order_by(col(DecisionRow.seq))).all()
    return [orjson.loads(r) for r in rows]


def export(store: Store, out: IO[bytes]) -> int:
    """The stored event log as Segment JSON Lines, in arrival order. Each message carries
    the daemon's receive time as `receivedAt` (microseconds), which
    `replay --order received` follows to reproduce the daemon's decisions."""
    count = 0
    with store.session() as session:
        rows = session.exec(
            select(col(EventRow.raw), col(EventRow.received_at)).order_by(col(EventRow.seq))
        )
        for raw, received_at in rows:
            message = orjson.loads(raw)
            message["receivedAt"] = format_iso(received_at)
            out.write(orjson.dumps(message) + b"\n")
            count += 1
    return count


def pending_timers(store: Store) -> list[Timer]:
    """Every stored timer, in due order."""
    with store.session() as session:
        return DbWorld(session, 0).load_all_timers()
