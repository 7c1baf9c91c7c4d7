"""Workflows, their executions and the executions' event histories.

An execution belongs to the server (``owner``) that runs it: :func:`record` and
:func:`finish` write for that server only. Who owns what, and how an execution whose
server stopped is taken over, is :mod:`loopml.store.execution_leases`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, exc, func, insert, select, update
from sqlalchemy.orm import Session

from loopml.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from loopml.core.ids import check_name, new_id
from loopml.core.schemas import Workflow, WorkflowExecution
from loopml.store.models import (
    ProjectRow,
    WorkflowEventRow,
    WorkflowExecutionRow,
    WorkflowRow,
    utcnow,
)
from loopml.store.projects import project_id

RUNNING = "RUNNING"
ENDED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
_MAX_NAME = 80


def save(
    session: Session, project: str, name: str, definition: dict[str, Any], type: str = "STANDARD"
) -> tuple[Workflow, bool]:
    """Create workflow ``name`` or replace its definition or type (the revision counts
    up)."""
    check_name(name)
    row = workflow_row(session, project, name, missing_ok=True)
    created = row is None
    now = utcnow()
    if row is None:
        row = WorkflowRow(
            id=new_id(), project_id=project_id(session, project), name=name,
            definition=definition, revision=1, type=type, created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(row)
    elif row.definition != definition or row.type != type:
        row.definition, row.type = definition, type
        row.revision += 1
        row.updated_at = now
    session.flush()
    return _workflow(project, row), created


def get(session: Session, project: str, name: str) -> Workflow:
    row = workflow_row(session, project, name)
    assert row is not None
    return _workflow(project, row)


def list_all(session: Session, project: str) -> list[Workflow]:
    rows = session.scalars(
        select(WorkflowRow)
        .where(WorkflowRow.project_id == project_id(session, project))
        .order_by(WorkflowRow.name)
    )
    return [_workflow(project, row) for row in rows]


def remove(session: Session, project: str, name: str) -> None:
    """Delete a workflow and its executions; refused while one of them runs."""
    row = workflow_row(session, project, name)
    assert row is not None
    running = session.scalar(
        select(func.count()).where(
            WorkflowExecutionRow.workflow_id == row.id, WorkflowExecutionRow.status == RUNNING
        )
    )
    if running:
        raise Conflict(
            f"workflow {name!r} has {running} running execution(s); stop them first",
            field="name",
        )
    session.delete(row)
    session.flush()


def start(
    session: Session,
    project: str,
    workflow: str,
    data: Any,
    *,
    name: str | None = None,
    trigger: str = "manual",
    started_by: str = "",
    owner: str,
) -> tuple[WorkflowExecution, bool]:
    """Record a new running execution owned by ``owner``; returns it and whether it is new.

    A ``name`` already used by an execution of the workflow with the same input returns
    that execution (a retried request starts nothing twice); with another input it is
    refused.
    """
    row = workflow_row(session, project, workflow)
    assert row is not None
    if name is not None:
        if not name or len(name) > _MAX_NAME:
            raise InvalidInput(f"an execution name has 1 to {_MAX_NAME} characters", field="name")
        same = _named(session, row.id, name)
        if same is not None:
            return _same(session, project, workflow, same, data), False
    now = utcnow()
    execution_id = new_id()
    execution = WorkflowExecutionRow(
        id=execution_id, workflow_id=row.id, name=name or execution_id,
        definition=row.definition, revision=row.revision, type=row.type, status=RUNNING,
        input=data,
        trigger=trigger, started_by=started_by, started_at=now, owner=owner, heartbeat_at=now,
        abort_requested=False, last_event=0,
    )  # fmt: skip
    try:
        with session.begin_nested():  # a savepoint: a lost race leaves the rest intact
            session.add(execution)
    except exc.IntegrityError:
        same = _named(session, row.id, execution.name)
        if same is None:
            raise
        return _same(session, project, workflow, same, data), False
    return _execution(session, project, workflow, execution), True


def _named(session: Session, workflow_id: str, name: str) -> WorkflowExecutionRow | None:
    return session.scalar(
        select(WorkflowExecutionRow).where(
            WorkflowExecutionRow.workflow_id == workflow_id, WorkflowExecutionRow.name == name
        )
    )


def _same(
    session: Session, project: str, workflow: str, same: WorkflowExecutionRow, data: Any
) -> WorkflowExecution:
    if same.input != data:
        raise AlreadyExists(
            f"execution {same.name!r} of workflow {workflow!r} already exists with another input",
            field="name",
        )
    return _execution(session, project, workflow, same)


def record(
    session: Session,
    execution_id: str,
    events: list[dict[str, Any]],
    *,
    checkpoint: tuple[str, Any, int] | None = None,
    owner: str | None = None,
) -> None:
    """Append history events and, with a ``checkpoint`` (the next top-level state, its
    input, the id of the last event before it), move the execution's resume point. With
    ``owner``, only while that server owns it: a server that lost it to another (which
    took it over) gets :class:`Conflict` instead of tangling the new owner's history."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if checkpoint is not None:
        # ``last_event`` is the checkpoint's: events after it are recorded again on resume.
        values["resume_state"], values["resume_input"], values["last_event"] = checkpoint
    query = update(WorkflowExecutionRow).where(WorkflowExecutionRow.id == execution_id)
    if owner is not None:
        query = query.where(WorkflowExecutionRow.owner == owner)
    result = session.execute(query.values(values))
    if owner is not None and not getattr(result, "rowcount", 0):
        raise _lost(execution_id, owner)
    if events:
        # One executemany, not the ORM's unit of work: this is on every checkpoint's path.
        session.execute(
            insert(WorkflowEventRow),
            [{"execution_id": execution_id, "seq": e["id"], "event": e} for e in events],
        )


def finish(
    session: Session,
    execution_id: str,
    status: str,
    *,
    output: Any = None,
    error: str | None = None,
    cause: str | None = None,
    last_event: int | None = None,
    owner: str | None = None,
) -> None:
    """End an execution; with ``owner``, only while that server owns it (see :func:`record`)."""
    if status not in ENDED:
        raise InvalidInput(f"{status!r} does not end an execution", field="status")
    row = session.get(WorkflowExecutionRow, execution_id)
    if row is None:
        raise NotFound(f"execution {execution_id!r} does not exist", field="execution")
    if owner is not None and row.owner != owner:
        raise _lost(execution_id, owner)
    row.status, row.output, row.error, row.cause = status, output, error, cause
    row.stopped_at = utcnow()
    row.owner = None
    row.resume_state = row.resume_input = None
    if last_event is not None:
        row.last_event = last_event
    session.flush()


def request_abort(session: Session, project: str, execution_id: str) -> WorkflowExecution:
    row = _execution_row(session, project, execution_id)
    if row.status != RUNNING:
        raise Conflict(
            f"execution {execution_id!r} already ended ({row.status})", field="execution"
        )
    row.abort_requested = True
    session.flush()
    return _entity(session, row)


def resume_point(session: Session, execution_id: str) -> dict[str, Any]:
    """What a server needs to run or resume an execution."""
    row = session.get(WorkflowExecutionRow, execution_id)
    if row is None:
        raise NotFound(f"execution {execution_id!r} does not exist", field="execution")
    return {
        "definition": row.definition, "input": row.input, "name": row.name,
        "state": row.resume_state, "state_input": row.resume_input,
        "last_event": row.last_event, "started_at": row.started_at,
        "abort": row.abort_requested, "status": row.status, "owner": row.owner,
        "type": row.type,
    }  # fmt: skip


def project_of(session: Session, execution_id: str) -> str:
    name = session.scalar(
        select(ProjectRow.name)
        .join(WorkflowRow, WorkflowRow.project_id == ProjectRow.id)
        .join(WorkflowExecutionRow, WorkflowExecutionRow.workflow_id == WorkflowRow.id)
        .where(WorkflowExecutionRow.id == execution_id)
    )
    if name is None:
        raise NotFound(f"execution {execution_id!r} does not exist", field="execution")
    return name


def get_execution(session: Session, project: str, execution_id: str) -> WorkflowExecution:
    return _entity(session, _execution_row(session, project, execution_id))


def list_executions(
    session: Session,
    project: str,
    workflow: str | None = None,
    *,
    status: str | None = None,
    limit: int = 100,
) -> list[WorkflowExecution]:
    query = (
        select(WorkflowExecutionRow)
        .join(WorkflowRow, WorkflowRow.id == WorkflowExecutionRow.workflow_id)
        .where(WorkflowRow.project_id == project_id(session, project))
    )
    if workflow is not None:
        query = query.where(WorkflowRow.name == workflow)
    if status is not None:
        query = query.where(WorkflowExecutionRow.status == status.upper())
    rows = session.scalars(
        query.order_by(
            WorkflowExecutionRow.started_at.desc(), WorkflowExecutionRow.id.desc()
        ).limit(max(1, min(limit, 1000)))
    )
    return [_entity(session, row) for row in rows]


def history(
    session: Session, project: str, execution_id: str, *, after: int = 0, limit: int = 1000
) -> list[dict[str, Any]]:
    """Events with ids above ``after``, oldest first."""
    _execution_row(session, project, execution_id)
    rows = session.scalars(
        select(WorkflowEventRow.event)
        .where(WorkflowEventRow.execution_id == execution_id, WorkflowEventRow.seq > after)
        .order_by(WorkflowEventRow.seq)
        .limit(max(1, min(limit, 10_000)))
    )
    return list(rows)


def drop_events_after(session: Session, execution_id: str, last: int) -> None:
    """Forget events past a checkpoint: a resumed execution records that work again."""
    session.execute(
        delete(WorkflowEventRow).where(
            WorkflowEventRow.execution_id == execution_id, WorkflowEventRow.seq > last
        )
    )


def _lost(execution_id: str, owner: str) -> Conflict:
    return Conflict(f"{owner} no longer owns execution {execution_id!r}", field="execution")


def workflow_row(
    session: Session, project: str, name: str, *, missing_ok: bool = False
) -> WorkflowRow | None:
    row = session.scalar(
        select(WorkflowRow).where(
            WorkflowRow.project_id == project_id(session, project), WorkflowRow.name == name
        )
    )
    if row is None and not missing_ok:
        raise NotFound(f"workflow {name!r} does not exist in project {project!r}", field="name")
    return row


def _execution_row(session: Session, project: str, execution_id: str) -> WorkflowExecutionRow:
    row = session.scalar(
        select(WorkflowExecutionRow)
        .join(WorkflowRow, WorkflowRow.id == WorkflowExecutionRow.workflow_id)
        .where(
            WorkflowExecutionRow.id == execution_id,
            WorkflowRow.project_id == project_id(session, project),
        )
    )
    if row is None:
        raise NotFound(
            f"execution {execution_id!r} does not exist in project {project!r}",
            field="execution",
        )
    return row


def _workflow(project: str, row: WorkflowRow) -> Workflow:
    return Workflow(
        id=row.id, project=project, name=row.name, definition=row.definition,
        revision=row.revision, type=row.type, created_at=row.created_at,
        updated_at=row.updated_at,
    )  # fmt: skip


def _execution(
    session: Session, project: str, workflow: str, row: WorkflowExecutionRow
) -> WorkflowExecution:
    return WorkflowExecution(
        id=row.id, project=project, workflow=workflow, name=row.name, revision=row.revision,
        type=row.type, status=row.status, input=row.input, output=row.output, error=row.error,
        cause=row.cause, trigger=row.trigger, started_by=row.started_by,
        started_at=row.started_at, stopped_at=row.stopped_at, events=row.last_event,
    )  # fmt: skip


def _entity(session: Session, row: WorkflowExecutionRow) -> WorkflowExecution:
    names = session.execute(
        select(ProjectRow.name, WorkflowRow.name)
        .join(WorkflowRow, WorkflowRow.project_id == ProjectRow.id)
        .where(WorkflowRow.id == row.workflow_id)
    ).one()
    return _execution(session, names[0], names[1], row)
