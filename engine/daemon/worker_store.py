"""The tables of several daemons on one PostgreSQL (docs/scale.md, "Several workers").

`route`: an id merged into another prospect is evaluated in the partition of its root (the
canonical id it resolves to), not its own; `partition_state`: one row per partition, locked
(`FOR UPDATE`) by every transaction that evaluates that partition's events or timers, with
the latest receive time evaluated there; `worker`: each running daemon, its heartbeat and
the partitions it holds (for `/health` and operators; leases themselves are advisory locks,
`daemon.leases`).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Text
from sqlmodel import Field, SQLModel


class RouteRow(SQLModel, table=True):
    __tablename__ = "route"
    id: str = Field(primary_key=True, max_length=300)
    root: str = Field(max_length=300, index=True)
    part: int


class PartitionStateRow(SQLModel, table=True):
    __tablename__ = "partition_state"
    part: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    last_received: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class WorkerRow(SQLModel, table=True):
    __tablename__ = "worker"
    id: str = Field(primary_key=True, max_length=200)
    host: str = Field(max_length=200)
    pid: int
    started_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    heartbeat_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    partitions: str = Field(sa_column=Column(Text, nullable=False))  # "0,1,5"
