"""shadow: the shadow rule set's decisions (never delivered) and its cursor in the event log

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shadow_decision",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=700), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("prospect", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("rule", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("rules_version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("shadow_decision", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shadow_decision_prospect"), ["prospect"], unique=False)
    op.create_table(
        "shadow_cursor",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        sa.Column("fired_through", sa.BigInteger(), nullable=True),
        sa.Column("last_received", sa.BigInteger(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("rules_version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("shadow_cursor")
    with op.batch_alter_table("shadow_decision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shadow_decision_prospect"))
    op.drop_table("shadow_decision")
