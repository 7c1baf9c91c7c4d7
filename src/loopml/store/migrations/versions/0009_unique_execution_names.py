"""an execution name starts one execution of its workflow, even under concurrent requests

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 07:30:00
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workflow_executions") as batch:
        batch.create_unique_constraint(
            "uq_workflow_executions_workflow_name", ["workflow_id", "name"]
        )


def downgrade() -> None:
    with op.batch_alter_table("workflow_executions") as batch:
        batch.drop_constraint("uq_workflow_executions_workflow_name", type_="unique")
