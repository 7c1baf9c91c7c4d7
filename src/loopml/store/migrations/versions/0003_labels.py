"""labels on dataset items, and whether a project reviews them

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 00:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(
            sa.Column("label_review", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    op.create_table(
        "labels",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("dataset_id", sa.String(length=32), nullable=False),
        sa.Column("item", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("author_key", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("applied_in", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_labels_dataset_item", "labels", ["dataset_id", "item"])
    op.create_index("ix_labels_status", "labels", ["status"])


def downgrade() -> None:
    op.drop_index("ix_labels_status", table_name="labels")
    op.drop_index("ix_labels_dataset_item", table_name="labels")
    op.drop_table("labels")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("label_review")
