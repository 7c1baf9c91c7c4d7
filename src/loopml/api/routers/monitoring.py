"""Monitoring runs of a deployment: its captured traffic over a window against its model
version's reference, run as a job (kind ``monitoring.run``), with the report as JSON and
as an HTML page with plots."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loopml.api import auth
from loopml.core.enums import JobState
from loopml.core.errors import Conflict, InvalidInput, NotFound
from loopml.core.schemas import Job
from loopml.home import Home
from loopml.monitoring import DriftOptions
from loopml.monitoring.run import parse_window
from loopml.store import deployments, jobs

router = APIRouter(
    prefix="/projects/{project}/deployments/{name}/monitoring/runs", tags=["monitoring"]
)
KIND = "monitoring.run"


class MonitoringRequest(BaseModel):
    """Which traffic to look at and how drift is decided."""

    model_config = ConfigDict(extra="forbid")

    window: str = Field(default="24h", description="The last 30m, 1h, 24h, 7d ... of traffic.")
    start: datetime | None = Field(default=None, description="Or a window from here ...")
    end: datetime | None = Field(default=None, description="... to here (default: now).")
    model_version: int | None = Field(
        default=None, ge=1, description="Default: the model the deployment serves."
    )
    method: str | None = Field(
        default=None, description="One drift test for every column (default: chosen per column)."
    )
    thresholds: dict[str, float] = Field(
        default_factory=dict, description='Per test, e.g. {"wasserstein": 0.2}.'
    )
    drift_share: float = Field(
        default=0.5, gt=0, le=1, description="Default: the project's alert settings' (0.5)."
    )

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        try:
            parse_window(value)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None
        return value

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)  # a time without a zone is UTC
        return value

    @model_validator(mode="after")
    def _options(self) -> MonitoringRequest:
        try:
            DriftOptions(self.method, {}, self.thresholds, self.drift_share).check()
        except InvalidInput as exc:
            raise ValueError(exc.message) from None
        if self.start and self.end and self.end <= self.start:
            raise ValueError("end must come after start")
        return self


@router.post(
    "",
    response_model=Job,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(auth.maintainer)],
)
def start_run(
    project: str, name: str, body: MonitoringRequest, home: Home = Depends(auth.get_home)
) -> Job:
    """Queue a monitoring run; its result summarises the report."""
    return queue_run(home, project, name, body)


def queue_run(home: Home, project: str, name: str, body: MonitoringRequest) -> Job:
    params: dict[str, Any] = body.model_dump(mode="json", exclude_none=True)
    if not body.thresholds:  # none given: the project's alert settings decide
        params.pop("thresholds", None)
    if "drift_share" not in body.model_fields_set:
        params.pop("drift_share", None)
    with home.db.session() as s:
        deployments.get_deployment(s, project, name)
        return jobs.enqueue(s, KIND, {**params, "deployment": name}, project=project)


@router.get("", response_model=list[Job], dependencies=[Depends(auth.viewer)])
def list_runs(
    project: str,
    name: str,
    limit: int = Query(default=100, ge=1, le=1000),
    home: Home = Depends(auth.get_home),
) -> list[Job]:
    """This deployment's monitoring runs, newest first."""
    with home.db.session() as s:
        deployments.get_deployment(s, project, name)
        return jobs.list_deployment_jobs(s, project, KIND, name, limit)


def _report_key(home: Home, project: str, name: str, run_id: str, suffix: str) -> str:
    with home.db.session() as s:
        deployments.get_deployment(s, project, name)
        try:
            job = jobs.get(s, run_id)
        except NotFound:
            job = None
    if (
        job is None
        or job.project != project
        or job.kind != KIND
        or (job.params.get("deployment") != name)
    ):
        raise NotFound(f"monitoring run {run_id!r} of {project}/{name} does not exist", field="run")
    if job.state is not JobState.succeeded:
        raise Conflict(
            f"monitoring run {run_id} is {job.state.value}; its report exists once it succeeds",
            field="run",
        )
    return str(job.result[suffix])


@router.get("/{run_id}/report", dependencies=[Depends(auth.viewer)])
def run_report(project: str, name: str, run_id: str, home: Home = Depends(auth.get_home)) -> Any:
    """The whole report: drift, quality, service figures, hour by hour, plot data."""
    return json.loads(home.blobs.get(_report_key(home, project, name, run_id, "report")))


@router.get("/{run_id}/report.html", dependencies=[Depends(auth.viewer)])
def run_report_html(
    project: str, name: str, run_id: str, home: Home = Depends(auth.get_home)
) -> Response:
    """The report as one self-contained HTML page with plots."""
    page = home.blobs.get(_report_key(home, project, name, run_id, "report_html"))
    return Response(page, media_type="text/html")
