"""workers: several daemons on one PostgreSQL (partitions, identity routes, live workers)

`event.link`: the id an `identify` or `alias` may merge (so a worker sees the event in both
partitions it touches); `route`: where an id merged into another prospect is evaluated;
`partition_state`: one row per partition, locked by the transaction that evaluates it;
`worker`: who runs, and which partitions each holds.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("link", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True)
        )
    # Pending events in the order received: what every evaluation pass reads first.
    op.create_index(
        "ix_event_pending_seq",
        "event",
        ["seq"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "route",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("root", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("route", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_route_root"), ["root"], unique=False)
    op.create_table(
        "partition_state",
        sa.Column("part", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_received", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("part"),
    )
    op.create_table(
        "worker",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat_at", sa.BigInteger(), nullable=False),
        sa.Column("partitions", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("worker")
    op.drop_table("partition_state")
    with op.batch_alter_table("route", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_route_root"))
    op.drop_table("route")
    op.drop_index("ix_event_pending_seq", table_name="event")
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_column("link")
