"""Workflow triggers: what starts a workflow by itself.

A trigger is due at ``due_at``; a server that fires it first moves ``due_at`` (and its
``cursor``) on with an update guarded by the ``due_at`` it read, so that of several
servers polling the same database exactly one fires each time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from loopml.core.errors import NotFound
from loopml.core.ids import check_name, new_id
from loopml.core.schemas import WorkflowTrigger
from loopml.store.models import ProjectRow, WorkflowRow, WorkflowTriggerRow, utcnow
from loopml.store.workflows import workflow_row


class Due(NamedTuple):
    """A trigger due now, with what firing it needs."""

    trigger: WorkflowTrigger
    cursor: Any


def put(
    session: Session,
    project: str,
    workflow: str,
    name: str,
    *,
    kind: str,
    spec: dict[str, Any],
    data: Any,
    due_at: datetime,
    cursor: Any,
    enabled: bool = True,
) -> tuple[WorkflowTrigger, bool]:
    """Create trigger ``name`` or replace it; what it has seen is kept when its kind and
    spec stay the same. Returns it and whether it is new."""
    check_name(name, field="trigger")  # "name" is the workflow's, in the routes
    parent = workflow_row(session, project, workflow)
    assert parent is not None
    row = session.scalar(
        select(WorkflowTriggerRow).where(
            WorkflowTriggerRow.workflow_id == parent.id, WorkflowTriggerRow.name == name
        )
    )
    created = row is None
    if row is None:
        row = WorkflowTriggerRow(
            id=new_id(), workflow_id=parent.id, name=name, fired=0, created_at=utcnow()
        )
        session.add(row)
    if created or row.kind != kind or row.spec != spec:
        row.kind, row.spec, row.cursor, row.due_at = kind, spec, cursor, due_at
    row.input, row.enabled, row.last_error = data, enabled, None
    session.flush()
    return _entity(project, workflow, row), created


def list_all(session: Session, project: str, workflow: str) -> list[WorkflowTrigger]:
    parent = workflow_row(session, project, workflow)
    assert parent is not None
    rows = session.scalars(
        select(WorkflowTriggerRow)
        .where(WorkflowTriggerRow.workflow_id == parent.id)
        .order_by(WorkflowTriggerRow.name)
    )
    return [_entity(project, workflow, row) for row in rows]


def get(session: Session, project: str, workflow: str, name: str) -> WorkflowTrigger:
    return _entity(project, workflow, _row(session, project, workflow, name))


def remove(session: Session, project: str, workflow: str, name: str) -> None:
    session.delete(_row(session, project, workflow, name))
    session.flush()


def due(session: Session, now: datetime, limit: int = 100) -> list[Due]:
    """Enabled triggers whose time has come, the longest waiting first."""
    rows = session.execute(
        select(WorkflowTriggerRow, WorkflowRow.name, ProjectRow.name)
        .join(WorkflowRow, WorkflowRow.id == WorkflowTriggerRow.workflow_id)
        .join(ProjectRow, ProjectRow.id == WorkflowRow.project_id)
        .where(WorkflowTriggerRow.enabled.is_(True), WorkflowTriggerRow.due_at <= now)
        .order_by(WorkflowTriggerRow.due_at)
        .limit(limit)
    ).all()
    return [Due(_entity(project, workflow, row), row.cursor) for row, workflow, project in rows]


def advance(
    session: Session,
    trigger: WorkflowTrigger,
    due_at: datetime,
    *,
    cursor: Any = None,
    fired: int = 0,
    error: str | None = None,
) -> bool:
    """Move a due trigger on (claiming this firing); False when another server did first.

    ``fired`` is added to the count (negative for executions claimed but not started)."""
    values: dict[str, Any] = {"due_at": due_at, "cursor": cursor, "last_error": error}
    if fired:
        values["fired"] = WorkflowTriggerRow.fired + fired
    if fired > 0:
        values["last_fired_at"] = utcnow()
    result = session.execute(
        update(WorkflowTriggerRow)
        .where(WorkflowTriggerRow.id == trigger.id, WorkflowTriggerRow.due_at == trigger.due_at)
        .values(values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def _row(session: Session, project: str, workflow: str, name: str) -> WorkflowTriggerRow:
    parent = workflow_row(session, project, workflow)
    assert parent is not None
    row = session.scalar(
        select(WorkflowTriggerRow).where(
            WorkflowTriggerRow.workflow_id == parent.id, WorkflowTriggerRow.name == name
        )
    )
    if row is None:
        raise NotFound(f"workflow {workflow!r} has no trigger {name!r}", field="trigger")
    return row


def _entity(project: str, workflow: str, row: WorkflowTriggerRow) -> WorkflowTrigger:
    return WorkflowTrigger(
        id=row.id, project=project, workflow=workflow, name=row.name, kind=row.kind,
        spec=row.spec, input=row.input, enabled=row.enabled, due_at=row.due_at,
        fired=row.fired, last_fired_at=row.last_fired_at, last_error=row.last_error,
        created_at=row.created_at,
    )  # fmt: skip
