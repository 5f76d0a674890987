"""The shadow rule set's tables: `shadow_decision` (what the candidate would have decided,
never delivered: the dispatcher reads only `decision`) and `shadow_cursor` (how far the
shadow has read the event log and fired its timers, so a restart resumes where it stopped).

A `shadow_cursor` row is written in the same transaction as the decisions it accounts for,
and only by the writer holding its `generation`: a second writer (another process) finds
the generation moved, rolls back and rebuilds its state from the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import BigInteger, Column, Text, func
from sqlmodel import Field, Session, SQLModel, col, select

from leadrules.engine.daemon.store import DecisionRow, EventRow, Store

NAME = "shadow"  # one shadow rule set per database


class ShadowDecisionRow(SQLModel, table=True):
    __tablename__ = "shadow_decision"
    seq: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=700)
    at: int = Field(sa_column=Column(BigInteger, nullable=False))  # when it was decided
    prospect: str = Field(max_length=300, index=True)
    action: str = Field(max_length=32)
    rule: str = Field(max_length=300)
    channel: str | None = Field(default=None, max_length=300)
    record: str = Field(sa_column=Column(Text, nullable=False))
    rules_version: str = Field(max_length=64)


class ShadowCursorRow(SQLModel, table=True):
    __tablename__ = "shadow_cursor"
    name: str = Field(primary_key=True, max_length=64)
    event_seq: int = Field(sa_column=Column(BigInteger, nullable=False))  # last event read
    fired_through: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    last_received: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    generation: int = 0
    errors: int = 0  # events and timers the shadow rules failed on (logged, skipped)
    rules_version: str = Field(max_length=64)
    updated_at: int = Field(sa_column=Column(BigInteger, nullable=False))


@dataclass(frozen=True)
class Position:
    """Where the shadow stands: its cursor and how far behind the log it is."""

    event_seq: int
    fired_through: int | None
    errors: int
    rules_version: str
    updated_at: int
    events_behind: int
    decisions: int


def cursor(session: Session) -> ShadowCursorRow | None:
    return session.get(ShadowCursorRow, NAME)


def position(store: Store) -> Position | None:
    """The shadow's cursor, or None when no shadow has run on this database."""
    with store.session() as session:
        row = cursor(session)
        if row is None:
            return None
        behind = session.exec(
            select(func.count()).select_from(EventRow).where(col(EventRow.seq) > row.event_seq)
        ).one()
        decisions = session.exec(select(func.count()).select_from(ShadowDecisionRow)).one()
        return Position(
            row.event_seq,
            row.fired_through,
            row.errors,
            row.rules_version,
            row.updated_at,
            int(behind),
            int(decisions),
        )


def shadow_records(store: Store) -> list[dict[str, Any]]:
    """Every recorded shadow decision, in the order decided."""
    with store.session() as session:
        rows = session.exec(
            select(col(ShadowDecisionRow.record)).order_by(col(ShadowDecisionRow.seq))
        ).all()
    return [orjson.loads(r) for r in rows]


def live_records(store: Store) -> list[dict[str, Any]]:
    """Every live decision record (the outbox, delivered or not), in the order decided."""
    with store.session() as session:
        rows = session.exec(select(col(DecisionRow.record)).order_by(col(DecisionRow.seq))).all()
    return [orjson.loads(r) for r in rows]
