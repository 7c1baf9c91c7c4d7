"""workflow types: STANDARD (a durable checkpoint after each Task) or EXPRESS

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 09:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("workflows", "workflow_executions"):
        # "never": rebuilding a table (SQLite's batch mode) drops it first, and the drop
        # cascades to its executions and their events.
        with op.batch_alter_table(table, recreate="never") as batch:
            batch.add_column(
                sa.Column("type", sa.String(length=16), nullable=False, server_default="STANDARD")
            )


def downgrade() -> None:
    for table in ("workflow_executions", "workflows"):
        with op.batch_alter_table(table, recreate="never") as batch:
            batch.drop_column("type")
