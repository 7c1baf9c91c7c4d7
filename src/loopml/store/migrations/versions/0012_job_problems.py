"""jobs: the caller's error a job failed with, whole (type, message, field and extras),
beside its text, so that it can be raised again as it was

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


# "never": rebuilding the table (SQLite's batch mode) drops it first, and the drop
# cascades to every job's log lines.


def upgrade() -> None:
    with op.batch_alter_table("jobs", recreate="never") as batch:
        batch.add_column(sa.Column("problem", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", recreate="never") as batch:
        batch.drop_column("problem")
