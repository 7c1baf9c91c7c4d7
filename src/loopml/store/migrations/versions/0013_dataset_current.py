"""datasets: the version a dataset's name alone means (the newest, or an earlier one whose
content its source holds again; NULL for datasets recorded before: the newest), and the
version its source last gave (NULL: not known yet)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# "never": rebuilding the table (SQLite's batch mode) drops it first, and the drop
# cascades to every version of every dataset.


def upgrade() -> None:
    with op.batch_alter_table("datasets", recreate="never") as batch:
        batch.add_column(sa.Column("current", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("source_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("datasets", recreate="never") as batch:
        batch.drop_column("source_version")
        batch.drop_column("current")
