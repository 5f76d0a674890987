"""privacy_audit: who erased or exported which prospect's data, when, and how many rows

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "privacy_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("operator", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("subject_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("privacy_audit", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_privacy_audit_subject_sha256"), ["subject_sha256"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("privacy_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_privacy_audit_subject_sha256"))
    op.drop_table("privacy_audit")
