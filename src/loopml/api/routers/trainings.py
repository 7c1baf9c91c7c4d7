"""AutoML trainings of a project: start one, follow it, read its leaderboard, report,
trials and model.

A training is a job of kind ``automl.train``; these routes add a checked request body
and the training's stored artifacts.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loopml.api import auth
from loopml.automl.decision import parse_cost_matrix
from loopml.automl.metrics import METRICS, get_metric
from loopml.core.enums import JobState, TaskType
from loopml.core.errors import Conflict, InvalidInput, NotFound
from loopml.core.ids import check_name
from loopml.core.schemas import Job
from loopml.data.builtin import BUILTIN_DATASETS, PREFIX
from loopml.home import Home
from loopml.store import datasets, jobs, projects

router = APIRouter(prefix="/projects/{project}/trainings", tags=["trainings"])
KIND = "automl.train"
ARTIFACTS = ("model", "report", "report_html", "leaderboard", "trials")


class TrainingRequest(BaseModel):
    """What to train on and how long to search."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(
        description="A dataset of the project, `name` (its latest version) or `name@3`, "
        "or a built-in one, `builtin:<name>`. Dataset versions train on their training "
        "part and are scored on their frozen test split."
    )
    target: str | None = Field(default=None, description="Target column (a built-in's default).")
    time_budget: float = Field(default=60.0, gt=0, le=7 * 24 * 3600, description="Seconds.")
    metric: str = Field(default="auto", description="auto, roc_auc, log_loss, rmse, ...")
    task: Literal["auto", "binary", "multiclass", "regression"] = "auto"
    seed: int = Field(default=0, ge=0, lt=2**32)
    max_trials: int | None = Field(default=None, ge=1)
    cost_matrix: dict[str, float] | None = Field(
        default=None, description='Binary tasks: e.g. {"fp": 1, "fn": 5}.'
    )
    confidence_threshold: float | None = Field(default=None, gt=0, lt=1)
    deploy: str | None = Field(
        default=None,
        description="A deployment to serve the model from when it passes the project's gates.",
    )

    @field_validator("deploy")
    @classmethod
    def _deployment_name(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_name(value, field="deploy")
            except InvalidInput as exc:
                raise ValueError(exc.message) from None
        return value

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        if value.startswith(PREFIX):
            if value.removeprefix(PREFIX) not in BUILTIN_DATASETS:
                known = ", ".join(PREFIX + n for n in sorted(BUILTIN_DATASETS))
                raise ValueError(f"unknown dataset {value!r}; built-in datasets: {known}")
            return value
        try:
            name, _ = datasets.parse_ref(value)
            check_name(name, field="dataset")
        except InvalidInput:
            known = ", ".join(PREFIX + n for n in sorted(BUILTIN_DATASETS))
            raise ValueError(
                f"{value!r} is neither a dataset of the project (name or name@version) nor "
                f"a built-in one; add sources as datasets first (POST .../datasets or "
                f"`loopml data add`). Built-in datasets: {known}"
            ) from None
        return value

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value != "auto" and value not in METRICS:
            raise ValueError(f"unknown metric {value!r}; choose one of: {', '.join(METRICS)}")
        return value

    @field_validator("cost_matrix")
    @classmethod
    def _valid_costs(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        try:
            parse_cost_matrix(value)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None
        return value

    @model_validator(mode="after")
    def _metric_fits_task(self) -> TrainingRequest:
        if self.task != "auto" and self.metric != "auto":
            try:
                get_metric(self.metric, TaskType(self.task))
            except InvalidInput as exc:
                raise ValueError(exc.message) from None
        return self


def _training(s: Any, project: str, training_id: str) -> Job:
    projects.get(s, project)
    try:
        job = jobs.get(s, training_id)
    except NotFound:
        job = None
    if job is None or job.project != project or job.kind != KIND:
        raise NotFound(
            f"training {training_id!r} does not exist in project {project!r}", field="training_id"
        )
    return job


def _artifact(home: Home, project: str, training_id: str, name: str) -> bytes:
    with home.db.session() as s:
        job = _training(s, project, training_id)
    if job.state is not JobState.succeeded:
        raise Conflict(
            f"training {training_id} is {job.state.value}; its {name} exists once it succeeds",
            field="training_id",
        )
    return home.blobs.get(job.result["artifacts"][name])


@router.post(
    "",
    response_model=Job,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(auth.maintainer)],
)
def start_training(project: str, body: TrainingRequest, home: Home = Depends(auth.get_home)) -> Job:
    """Queue an AutoML training; follow it with GET on the training (progress, message)."""
    return queue_training(home, project, body)


def queue_training(home: Home, project: str, body: TrainingRequest) -> Job:
    params = body.model_dump(exclude_none=True)
    with home.db.session() as s:
        if not body.dataset.startswith(PREFIX):
            name, number = datasets.parse_ref(body.dataset)
            version = datasets.get_version(s, project, name, number)
            # Pin the version now: "latest" must mean the latest when the training was asked for.
            params["dataset"] = version.ref
        return jobs.enqueue(s, KIND, params, project=project)


@router.get("", response_model=list[Job], dependencies=[Depends(auth.viewer)])
def list_trainings(
    project: str,
    state: JobState | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
    home: Home = Depends(auth.get_home),
) -> list[Job]:
    with home.db.session() as s:
        projects.get(s, project)
        return jobs.list_jobs(s, project=project, state=state, kind=KIND, limit=limit)


@router.get("/{training_id}", response_model=Job, dependencies=[Depends(auth.viewer)])
def get_training(project: str, training_id: str, home: Home = Depends(auth.get_home)) -> Job:
    """The training's state, progress ("12 trials, best 0.97 (lightgbm), 41 s left") and,
    once done, its summary."""
    with home.db.session() as s:
        return _training(s, project, training_id)


@router.get("/{training_id}/leaderboard", dependencies=[Depends(auth.viewer)])
def training_leaderboard(
    project: str, training_id: str, home: Home = Depends(auth.get_home)
) -> list[dict[str, Any]]:
    """Every candidate, best first: the ensemble, searched models and the baselines."""
    return list(json.loads(_artifact(home, project, training_id, "leaderboard")))


@router.get("/{training_id}/report", dependencies=[Depends(auth.viewer)])
def training_report(
    project: str, training_id: str, home: Home = Depends(auth.get_home)
) -> dict[str, Any]:
    """Cross-validated metrics with intervals, curves, importances, slices, robustness."""
    return dict(json.loads(_artifact(home, project, training_id, "report")))


@router.get(
    "/{training_id}/report.html",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}}},
    dependencies=[Depends(auth.viewer)],
)
def training_report_html(
    project: str, training_id: str, home: Home = Depends(auth.get_home)
) -> Response:
    """The report as one self-contained page with its plots (ROC, calibration, ...)."""
    page = _artifact(home, project, training_id, "report_html")
    return Response(page, media_type="text/html; charset=utf-8")


@router.get("/{training_id}/trials", dependencies=[Depends(auth.viewer)])
def training_trials(
    project: str, training_id: str, home: Home = Depends(auth.get_home)
) -> list[dict[str, Any]]:
    """Every trial as logged: learner, parameters, fold scores, time (enough to rebuild it)."""
    lines = _artifact(home, project, training_id, "trials").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@router.get(
    "/{training_id}/model",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
    dependencies=[Depends(auth.viewer)],
)
def training_model(project: str, training_id: str, home: Home = Depends(auth.get_home)) -> Response:
    """The model artifact; ``AutoML.load(path, expected_hash=...)`` verifies it."""
    data = _artifact(home, project, training_id, "model")
    with home.db.session() as s:
        digest = _training(s, project, training_id).result["model"]["content_hash"]
    return Response(
        data,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{project}-{training_id}.zip"',
            "X-Loopml-Content-Hash": digest,
        },
    )
