"""set_aside: events and timers taken out of evaluation

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The event table already keeps each event's receive time (`received_at`).
    op.create_table(
        "set_aside",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=700), nullable=False),
        sa.Column("prospect", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("due_at", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("trace", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("set_aside", schema=None) as batch_op:
        batch_op.create_index("ix_set_aside_status", ["status", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("set_aside", schema=None) as batch_op:
        batch_op.drop_index("ix_set_aside_status")

    op.drop_table("set_aside")
