"""Jobs of a project: submit, watch progress and logs, cancel."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, status
from pydantic import BaseModel, Field

from loopml.api import auth
from loopml.core.enums import JobState
from loopml.core.errors import NotFound
from loopml.core.schemas import Job, JobLogLine
from loopml.home import Home
from loopml.jobs.kinds import JobKinds
from loopml.store import jobs, projects

router = APIRouter(prefix="/projects/{project}/jobs", tags=["jobs"])
admin_router = APIRouter(prefix="/jobs", tags=["jobs"])


class JobSubmit(BaseModel):
    kind: str = Field(description="A registered job kind, e.g. 'selfcheck'.")
    params: dict[str, Any] = Field(default_factory=dict)
    max_attempts: int = Field(default=1, ge=1, le=10)


def _kinds(request: Request) -> JobKinds:
    kinds: JobKinds = request.app.state.job_kinds
    return kinds


def _job_in(s: Any, project: str, job_id: str) -> Job:
    projects.get(s, project)  # an unknown project is named as such, not as an unknown job
    job = jobs.get(s, job_id)
    if job.project != project:
        raise NotFound(f"job {job_id!r} does not exist in project {project!r}", field="job_id")
    return job


@router.get("", response_model=list[Job], dependencies=[Depends(auth.viewer)])
def list_jobs(
    project: str,
    state: JobState | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
    home: Home = Depends(auth.get_home),
) -> list[Job]:
    with home.db.session() as s:
        projects.get(s, project)
        return jobs.list_jobs(s, project=project, state=state, limit=limit)


@router.post(
    "",
    response_model=Job,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(auth.maintainer)],
)
def submit_job(
    project: str,
    body: JobSubmit,
    home: Home = Depends(auth.get_home),
    kinds: JobKinds = Depends(_kinds),
) -> Job:
    """Queue a job; poll it (or its logs) to follow progress."""
    kinds.validate(body.kind, body.params)  # a 422 now, not a failed job later
    with home.db.session() as s:
        return jobs.enqueue(
            s, body.kind, body.params, project=project, max_attempts=body.max_attempts
        )


@router.get("/{job_id}", response_model=Job, dependencies=[Depends(auth.viewer)])
def get_job(project: str, job_id: str, home: Home = Depends(auth.get_home)) -> Job:
    with home.db.session() as s:
        return _job_in(s, project, job_id)


@router.post("/{job_id}/cancel", response_model=Job, dependencies=[Depends(auth.maintainer)])
def cancel_job(project: str, job_id: str, home: Home = Depends(auth.get_home)) -> Job:
    """Cancel a queued job at once; a running job is stopped by its worker shortly."""
    with home.db.session() as s:
        _job_in(s, project, job_id)
        return jobs.cancel(s, job_id)


@router.get("/{job_id}/logs", response_model=list[JobLogLine], dependencies=[Depends(auth.viewer)])
def job_logs(
    project: str,
    job_id: str,
    after: int = Query(default=0, ge=0),
    home: Home = Depends(auth.get_home),
) -> list[JobLogLine]:
    """Log lines after sequence number ``after`` (pass the last seen ``seq`` to follow)."""
    with home.db.session() as s:
        _job_in(s, project, job_id)
        return jobs.logs(s, job_id, after)


@admin_router.get("", response_model=list[Job], dependencies=[Depends(auth.admin)])
def list_all_jobs(
    state: JobState | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
    home: Home = Depends(auth.get_home),
) -> list[Job]:
    """Every job of the installation (admin only)."""
    with home.db.session() as s:
        return jobs.list_jobs(s, state=state, limit=limit)
