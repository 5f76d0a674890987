"""The daemon's store: SQLModel tables over SQLite (default, WAL) or PostgreSQL.

Tables: `event` (the event log; `message_id` unique), `prospect` (one state document per
prospect), `alias` (linked ids), `timer` (future evaluations, unique key, by due time) and
`decision` (the outbox: unique idempotency key, delivery status and attempts), and
`set_aside` (events and timers taken out of evaluation: those that raised, kept to be
retried, and timers a rule reload made obsolete, with the reason).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from sqlalchemy import BigInteger, Column, Index, Text, event, text
from sqlalchemy.engine import Engine
from sqlmodel import AutoString, Field, Session, SQLModel, create_engine

from leadrules.engine.daemon.pool_ping import ping_when_idle


class EventRow(SQLModel, table=True):
    __tablename__ = "event"
    # Pending events in the order received: what every evaluation pass reads first.
    __table_args__ = (
        Index(
            "ix_event_pending_seq",
            "seq",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )
    seq: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(unique=True, max_length=300)
    prospect: str = Field(max_length=300)
    ts: int = Field(sa_column=Column(BigInteger, nullable=False))
    received_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    raw: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", index=True, max_length=16)
    # The id an `identify` or `alias` may merge into the event's prospect (`partitions`).
    link: str | None = Field(default=None, max_length=300)


class ProspectRow(SQLModel, table=True):
    __tablename__ = "prospect"
    id: str = Field(primary_key=True, max_length=300)
    state: str = Field(sa_column=Column(Text, nullable=False))
    stage: str = Field(max_length=16)
    updated_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class AliasRow(SQLModel, table=True):
    __tablename__ = "alias"
    alias: str = Field(primary_key=True, max_length=300)
    canonical: str = Field(max_length=300)


class TimerRow(SQLModel, table=True):
    __tablename__ = "timer"
    __table_args__ = (Index("ix_timer_due", "due_at", "seq"),)
    seq: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=600)
    due_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    prospect: str = Field(max_length=300)
    payload: str = Field(sa_column=Column(Text, nullable=False))


# A decision's delivery: `pending` (to be sent, maybe after a backoff), `sent`, `dead` (a
# permanent error, or max_attempts used up) and `dropped` (a dead letter given up on).
DecisionStatus = Literal["pending", "sent", "dead", "dropped"]
DECISION_STATUSES: tuple[DecisionStatus, ...] = get_args(DecisionStatus)


class DecisionRow(SQLModel, table=True):
    __tablename__ = "decision"
    __table_args__ = (Index("ix_decision_due", "status", "next_attempt_at"),)
    seq: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=700)
    at: int = Field(sa_column=Column(BigInteger, nullable=False))
    prospect: str = Field(max_length=300)
    action: str = Field(max_length=32)
    rule: str = Field(max_length=300)
    channel: str | None = Field(default=None, max_length=300)
    record: str = Field(sa_column=Column(Text, nullable=False))
    context: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    status: DecisionStatus = Field(default="pending", sa_type=AutoString(length=16), nullable=False)
    attempts: int = 0
    next_attempt_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    received_at: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    sent_at: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class SetAsideRow(SQLModel, table=True):
    """One event or timer taken out of evaluation (engine/daemon/quarantine.py). `held`:
    evaluating it raised (`error`, `trace`) and it waits for `leadrules quarantine retry`
    (then `retried`) or `discard` (then `discarded`). `obsolete`: a timer whose sequence or
    trigger a reload removed (`error` says which); it is never retried."""

    __tablename__ = "set_aside"
    __table_args__ = (Index("ix_set_aside_status", "status", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # event | timer
    key: str = Field(max_length=700)  # the event's messageId or the timer's key
    prospect: str = Field(max_length=300)
    due_at: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    payload: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    status: str = Field(max_length=16)
    error: str = Field(sa_column=Column(Text, nullable=False))
    trace: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk before the API answers 200, even on power loss.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An SQLAlchemy engine for `sqlite:///path` or `postgresql://...` (psycopg 3)."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # A connection is pinged before use only after a second idle (`pool_ping`), not at every
    # checkout: that round trip was a large share of each short transaction.
    return ping_when_idle(create_engine(url, pool_size=5, max_overflow=5))


class Store:
    """The database: an engine, the schema, and sessions (one transaction each)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)

    def migrate(self) -> None:
        """Bring the schema up to date (Alembic migrations in engine/daemon/migrations)."""
        from leadrules.engine.daemon.migrate import upgrade

        upgrade(self.engine)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        self.engine.dispose()
