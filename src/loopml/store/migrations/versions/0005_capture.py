"""capture share per deployment, and feedback on predictions

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 02:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(
            sa.Column("capture_percent", sa.Float(), nullable=False, server_default="100")
        )
    op.create_table(
        "prediction_feedback",
        sa.Column("prediction_id", sa.String(length=32), nullable=False),
        sa.Column("deployment_id", sa.String(length=32), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("prediction_id"),
    )
    op.create_index(
        "ix_prediction_feedback_deployment_id", "prediction_feedback", ["deployment_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_prediction_feedback_deployment_id", table_name="prediction_feedback")
    op.drop_table("prediction_feedback")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("capture_percent")
