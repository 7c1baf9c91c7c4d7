"""Which server runs a workflow execution.

An execution belongs to the server (``owner``) that runs it, which proves it is alive
with ``heartbeat_at``; an execution whose owner stopped beating is taken over and resumed
from its checkpoint (``resume_state``, ``resume_input``) by another server, or by the
same one after a restart.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from loopml.store.models import WorkflowExecutionRow, utcnow
from loopml.store.workflows import RUNNING


def release(session: Session, owner: str) -> int:
    """Give up ``owner``'s running executions (a clean shutdown) for another to resume."""
    result = session.execute(
        update(WorkflowExecutionRow)
        .where(WorkflowExecutionRow.owner == owner, WorkflowExecutionRow.status == RUNNING)
        .values(owner=None, heartbeat_at=None)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def beat(session: Session, owner: str, running: Collection[str] | None = None) -> list[str]:
    """Refresh ``owner``'s heartbeats (only those of ``running``, when given); returns its
    executions asked to stop."""
    query = update(WorkflowExecutionRow).where(
        WorkflowExecutionRow.owner == owner, WorkflowExecutionRow.status == RUNNING
    )
    if running is not None:
        # An execution its owner no longer runs (its thread died) must go stale, so
        # that it is taken over and resumed instead of left running forever.
        query = query.where(WorkflowExecutionRow.id.in_(list(running)))
    session.execute(query.values(heartbeat_at=utcnow()))
    return list(
        session.scalars(
            select(WorkflowExecutionRow.id).where(
                WorkflowExecutionRow.owner == owner,
                WorkflowExecutionRow.status == RUNNING,
                WorkflowExecutionRow.abort_requested.is_(True),
            )
        )
    )


def take_over(
    session: Session, owner: str, timeout: float, now: datetime | None = None
) -> list[str]:
    """Claim running executions nobody owns or whose owner's heartbeat is older than
    ``timeout`` seconds; returns their ids."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=timeout)
    orphans = session.execute(
        select(WorkflowExecutionRow.id, WorkflowExecutionRow.heartbeat_at).where(
            WorkflowExecutionRow.status == RUNNING,
            (WorkflowExecutionRow.heartbeat_at.is_(None))
            | (WorkflowExecutionRow.heartbeat_at < cutoff),
        )
    ).all()
    claimed = []
    for execution_id, seen in orphans:
        guard = (
            WorkflowExecutionRow.heartbeat_at.is_(None)
            if seen is None
            else WorkflowExecutionRow.heartbeat_at == seen
        )
        # The heartbeat guard makes two servers racing for one orphan claim it once.
        result = session.execute(
            update(WorkflowExecutionRow)
            .where(WorkflowExecutionRow.id == execution_id, guard)
            .values(owner=owner, heartbeat_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0):
            claimed.append(execution_id)
    return claimed
