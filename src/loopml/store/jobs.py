"""The job queue, kept in the metadata database.

Claiming is one ``UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED)`` statement:
on PostgreSQL concurrent workers skip each other's locked rows; on SQLite the statement
runs under the database's single write lock, and the ``state = 'queued'`` guard in the
outer ``WHERE`` makes a lost race claim nothing rather than claim twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, exc, func, literal, select, update
from sqlalchemy.orm import Session

from loopml.core.enums import JobState
from loopml.core.errors import Conflict, InvalidInput, NotFound
from loopml.core.ids import new_id
from loopml.core.schemas import Job, JobLogLine
from loopml.store.models import JobLogRow, JobRow, ProjectRow, UtcDateTime, utcnow

_MAX_LOG_CHARS = 10_000


def enqueue(
    session: Session,
    kind: str,
    params: dict[str, Any] | None = None,
    *,
    project: str | None = None,
    max_attempts: int = 1,
) -> Job:
    if max_attempts < 1:
        raise InvalidInput("max_attempts must be at least 1", field="max_attempts")
    project_id = None
    if project is not None:
        project_id = session.scalar(select(ProjectRow.id).where(ProjectRow.name == project))
        if project_id is None:
            raise NotFound(f"project {project!r} does not exist", field="project")
    row = JobRow(
        id=new_id(),
        project_id=project_id,
        kind=kind,
        params=params or {},
        state=JobState.queued.value,
        max_attempts=max_attempts,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return _entity(session, row)


def claim(session: Session, worker: str, kinds: list[str] | None = None) -> Job | None:
    """Atomically take the oldest queued job (of ``kinds``, when given) for ``worker``."""
    candidate = select(JobRow.id).where(JobRow.state == JobState.queued.value)
    if kinds is not None:
        candidate = candidate.where(JobRow.kind.in_(kinds))
    candidate = (
        candidate.order_by(JobRow.created_at, JobRow.id).limit(1).with_for_update(skip_locked=True)
    )
    now = utcnow()
    claimed = session.execute(
        update(JobRow)
        .where(JobRow.id == candidate.scalar_subquery(), JobRow.state == JobState.queued.value)
        .values(
            state=JobState.running.value,
            worker=worker,
            started_at=now,
            heartbeat_at=now,
            attempts=JobRow.attempts + 1,
            progress=0.0,
            message="started",
        )
        .returning(JobRow.id)
        .execution_options(synchronize_session=False)
    ).scalar()
    if claimed is None:
        return None
    session.flush()
    return get(session, claimed)


def heartbeat(session: Session, job_id: str, worker: str) -> bool:
    """Record that ``worker`` is alive; returns whether cancellation was requested.

    Raises :class:`Conflict` when the job is no longer this worker's (it was reaped).
    """
    _guarded_update(session, job_id, worker, heartbeat_at=utcnow())
    return bool(session.scalar(select(JobRow.cancel_requested).where(JobRow.id == job_id)))


def set_progress(
    session: Session, job_id: str, worker: str, fraction: float, message: str = ""
) -> None:
    if not 0.0 <= fraction <= 1.0:
        raise InvalidInput("progress must be between 0 and 1", field="progress")
    _guarded_update(
        session, job_id, worker, progress=fraction, message=message[:1000], heartbeat_at=utcnow()
    )


def _guarded_update(session: Session, job_id: str, worker: str, **values: Any) -> None:
    # Every write by a worker is conditional on the job still being its own, so a worker
    # that was presumed dead (and whose job was re-queued) can never overwrite the new run.
    done = session.execute(
        update(JobRow)
        .where(
            JobRow.id == job_id,
            JobRow.state == JobState.running.value,
            JobRow.worker == worker,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"job {job_id} is no longer running on {worker}", field="job_id")


def log(session: Session, job_id: str, message: str, level: str = "info") -> None:
    session.add(JobLogRow(job_id=job_id, message=message[:_MAX_LOG_CHARS], level=level))
    try:
        session.flush()
    except exc.IntegrityError as error:  # the foreign key: no such job (any more)
        raise NotFound(f"job {job_id!r} does not exist", field="job_id") from error


def finish(
    session: Session,
    job_id: str,
    worker: str,
    state: JobState,
    *,
    result: Any = None,
    error: str | None = None,
    problem: dict[str, Any] | None = None,
) -> Job:
    """Record a job's outcome; raises :class:`Conflict` if it was reaped meanwhile.
    ``problem`` is a caller's error whole (see :mod:`loopml.jobs.failures`)."""
    if not state.finished:
        raise InvalidInput(f"{state.value} is not a final state", field="state")
    values: dict[str, Any] = {
        "state": state.value,
        "result": result,
        "error": error,
        "problem": problem,
        "finished_at": utcnow(),
    }
    if state is JobState.succeeded:
        values.update(progress=1.0, message="done")
    _guarded_update(session, job_id, worker, **values)
    return get(session, job_id)


def requeue(session: Session, job_id: str, worker: str, reason: str) -> None:
    """Give a running job back to the queue (its worker is shutting down cleanly);
    the interrupted attempt does not count against ``max_attempts``.

    A job whose cancellation was requested is cancelled instead: it must not run again.
    """
    # One conditional statement, so a cancel() landing meanwhile is never lost.
    cancelled = JobRow.cancel_requested.is_(True)
    _guarded_update(
        session,
        job_id,
        worker,
        state=case((cancelled, JobState.cancelled.value), else_=JobState.queued.value),
        attempts=case((cancelled, JobRow.attempts), else_=JobRow.attempts - 1),
        message=case((cancelled, f"cancelled on request ({reason})"), else_=f"re-queued: {reason}"),
        error=case((cancelled, "cancelled on request"), else_=JobRow.error),
        finished_at=case((cancelled, literal(utcnow(), UtcDateTime())), else_=JobRow.finished_at),
    )
    state = session.scalar(select(JobRow.state).where(JobRow.id == job_id))
    if state == JobState.cancelled.value:
        log(session, job_id, f"cancelled on request ({reason})", level="warning")
    else:
        log(session, job_id, f"re-queued: {reason}", level="warning")


def cancel(session: Session, job_id: str) -> Job:
    """Cancel a queued job at once, or ask the worker running it to stop."""
    _row(session, job_id)
    # Each branch is conditional on the state it expects, so a claim racing this call
    # turns the "cancel now" into a "cancel when the worker next looks" rather than both.
    for expected, values in (
        (
            JobState.queued,
            {
                "state": JobState.cancelled.value,
                "finished_at": utcnow(),
                "error": "cancelled before it started",
            },
        ),
        (JobState.running, {"cancel_requested": True}),
    ):
        done = session.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.state == expected.value)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount == 1:  # type: ignore[attr-defined]
            return get(session, job_id)
    row = _row(session, job_id)
    raise Conflict(f"job {job_id} already {row.state}", field="job_id")


def reap(session: Session, timeout: float, now: datetime | None = None) -> list[Job]:
    """Re-queue (or fail, when out of attempts) running jobs whose heartbeat is older
    than ``timeout`` seconds: their worker died without saying so."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=timeout)
    stale = session.scalars(
        select(JobRow).where(JobRow.state == JobState.running.value, JobRow.heartbeat_at < cutoff)
    ).all()
    reaped = []
    for row in stale:
        assert row.heartbeat_at is not None
        reason = (
            f"worker {row.worker} stopped sending heartbeats at {row.heartbeat_at.isoformat()} "
            f"(timeout {timeout:g}s) during attempt {row.attempts} of {row.max_attempts}"
        )
        values: dict[str, Any]
        if row.cancel_requested:
            values = {"state": JobState.cancelled.value, "error": reason, "finished_at": now}
        elif row.attempts < row.max_attempts:
            values = {"state": JobState.queued.value, "message": "re-queued: " + reason}
        else:
            values = {"state": JobState.failed.value, "error": reason, "finished_at": now}
        # Guarded by the values just read, so two reapers racing change a job at most once.
        done = session.execute(
            update(JobRow)
            .where(
                JobRow.id == row.id,
                JobRow.state == JobState.running.value,
                JobRow.worker == row.worker,
                JobRow.heartbeat_at == row.heartbeat_at,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount == 1:  # type: ignore[attr-defined]
            session.add(JobLogRow(job_id=row.id, message=reason, level="warning"))
            reaped.append(row.id)
    session.flush()
    return [get(session, job_id) for job_id in reaped]


def get(session: Session, job_id: str) -> Job:
    return _entity(session, _row(session, job_id))


def list_jobs(
    session: Session,
    *,
    project: str | None = None,
    state: JobState | None = None,
    kind: str | None = None,
    limit: int = 100,
) -> list[Job]:
    query = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id.desc()).limit(limit)
    if kind is not None:
        query = query.where(JobRow.kind == kind)
    if project is not None:
        query = query.join(ProjectRow, ProjectRow.id == JobRow.project_id).where(
            ProjectRow.name == project
        )
    if state is not None:
        query = query.where(JobRow.state == state.value)
    return [_entity(session, r) for r in session.scalars(query)]


def list_deployment_jobs(
    session: Session, project: str, kind: str, deployment: str, limit: int = 100
) -> list[Job]:
    """A deployment's jobs of ``kind`` (batch predictions, monitoring runs), newest first."""
    fetch = limit
    while True:  # other deployments' jobs are filtered out: fetch until enough
        found = list_jobs(session, project=project, kind=kind, limit=fetch)
        mine = [j for j in found if j.params.get("deployment") == deployment]
        if len(mine) >= limit or len(found) < fetch:
            return mine[:limit]
        fetch *= 4


def logs(session: Session, job_id: str, after: int = 0) -> list[JobLogLine]:
    _row(session, job_id)
    rows = session.scalars(
        select(JobLogRow)
        .where(JobLogRow.job_id == job_id, JobLogRow.seq > after)
        .order_by(JobLogRow.seq)
    )
    return [JobLogLine.model_validate(r) for r in rows]


def count(session: Session, state: JobState) -> int:
    return session.scalar(select(func.count()).where(JobRow.state == state.value)) or 0


def _row(session: Session, job_id: str) -> JobRow:
    row = session.get(JobRow, job_id, populate_existing=True)
    if row is None:
        raise NotFound(f"job {job_id!r} does not exist", field="job_id")
    return row


def _entity(session: Session, row: JobRow) -> Job:
    project = None
    if row.project_id is not None:
        project = session.scalar(select(ProjectRow.name).where(ProjectRow.id == row.project_id))
    return Job(
        id=row.id,
        project=project,
        kind=row.kind,
        params=row.params or {},
        state=JobState(row.state),
        progress=row.progress,
        message=row.message,
        result=row.result,
        error=row.error,
        problem=row.problem,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        worker=row.worker,
        cancel_requested=row.cancel_requested,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        heartbeat_at=row.heartbeat_at,
    )
