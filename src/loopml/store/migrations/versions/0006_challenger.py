"""a challenger model per deployment: shadow or weighted canary

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 03:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("challenger_version_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("challenger_mode", sa.String(length=16), nullable=True))
        batch.add_column(
            sa.Column("challenger_percent", sa.Float(), nullable=False, server_default="0")
        )
        batch.create_foreign_key(
            "fk_deployments_challenger_version", "model_versions",
            ["challenger_version_id"], ["id"],
        )  # fmt: skip


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_constraint("fk_deployments_challenger_version", type_="foreignkey")
        batch.drop_column("challenger_percent")
        batch.drop_column("challenger_mode")
        batch.drop_column("challenger_version_id")
