"""Deployments of a project: named endpoints serving a model version, and predictions.

``POST .../deployments/{name}/predict`` (alias ``/invocations``, as SageMaker names it)
takes JSON records (a list, ``{"records": [...]}`` or ``{"instances": [...]}``) or CSV
with a header, and answers one prediction per row.
"""

from __future__ import annotations

import io
import json
import random
import time
from datetime import datetime, timezone
from typing import Any

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from loopml.api import auth
from loopml.core.enums import Stage
from loopml.core.errors import InvalidInput
from loopml.core.schemas import ApiKey, Deployment, Feedback
from loopml.home import Home
from loopml.serving.capture import CaptureWriter, read_captures
from loopml.serving.models import ModelCache
from loopml.serving.predict import answer, check_rows
from loopml.store import registry
from loopml.store.registry import KEEP

router = APIRouter(prefix="/projects/{project}/deployments", tags=["deployments"])
IGNORED_HEADER = "X-Loopml-Ignored-Columns"


class DeployRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: int = Field(ge=1, description="The model version number to serve.")
    confidence_threshold: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Below it a prediction abstains; null stops abstaining, leaving it out "
        "keeps the deployment's current one.",
    )
    fallback_label: str | None = Field(
        default=None, max_length=200, description='What an abstaining row says ("unknown").'
    )
    capture_percent: float | None = Field(
        default=None, ge=0, le=100, description="Share of predicted rows captured (100)."
    )
    reason: str = Field(default="", max_length=10_000)


class Predictions(BaseModel):
    model_version: int
    predictions: list[dict[str, Any]] = Field(
        description="Per row: label (or value), probabilities, confidence, abstained, "
        "prediction_id, model_version."
    )


def get_models(request: Request) -> ModelCache:
    models: ModelCache = request.app.state.models
    return models


@router.get("", response_model=list[Deployment], dependencies=[Depends(auth.viewer)])
def list_deployments(project: str, home: Home = Depends(auth.get_home)) -> list[Deployment]:
    with home.db.session() as s:
        return registry.list_deployments(s, project)


@router.put("/{name}", response_model=Deployment, dependencies=[Depends(auth.maintainer)])
def deploy(
    project: str,
    name: str,
    body: DeployRequest,
    response: Response,
    key: ApiKey = Depends(auth.maintainer),
    home: Home = Depends(auth.get_home),
    models: ModelCache = Depends(get_models),
) -> Deployment:
    """Serve a model version under ``name`` (201 when the deployment is new). The model is
    loaded and checked before the switch, so requests never meet a model that fails to load;
    it moves to the production stage, with the reason kept in its history."""
    with home.db.session() as s:
        version = registry.get_model(s, project, body.model)
    models.get(version)
    threshold = (
        body.confidence_threshold if "confidence_threshold" in body.model_fields_set else KEEP
    )
    with home.db.session() as s:
        deployment, created = registry.deploy(
            s, project, name, body.model,
            confidence_threshold=threshold, fallback_label=body.fallback_label,
            capture_percent=body.capture_percent,
        )  # fmt: skip
        registry.set_stage(
            s, project, body.model, Stage.production, actor=key.name,
            reason=body.reason or f"deployed to {name}",
        )  # fmt: skip
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return deployment


@router.get("/{name}", response_model=Deployment, dependencies=[Depends(auth.viewer)])
def get_deployment(project: str, name: str, home: Home = Depends(auth.get_home)) -> Deployment:
    with home.db.session() as s:
        return registry.get_deployment(s, project, name)


@router.delete(
    "/{name}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[Depends(auth.maintainer)]
)
def delete_deployment(project: str, name: str, home: Home = Depends(auth.get_home)) -> Response:
    with home.db.session() as s:
        registry.delete_deployment(s, project, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


_PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "array", "items": {"type": "object"}},
                        {"type": "object", "properties": {"records": {"type": "array"}}},
                        {"type": "object", "properties": {"instances": {"type": "array"}}},
                    ]
                },
                "example": [{"mean radius": 14.2, "mean texture": 19.1}],
            },
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}


async def _records(request: Request) -> tuple[list[Any], int | None]:
    """The request's records, and the file line of the first one when they came as CSV."""
    body = await request.body()
    media = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if media == "text/csv":
        try:
            frame = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"the CSV body cannot be read: {exc}", field="body") from exc
        # A blank CSV cell is a missing value, whatever the column holds.
        records = frame.replace("", None).to_dict(orient="records")
        return records, 2
    if media not in ("application/json", ""):
        raise InvalidInput(
            f"content type {media!r}: send application/json records or text/csv", field="body"
        )
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"the body is not JSON (line {exc.lineno} column {exc.colno}: {exc.msg})",
            field="body",
        ) from exc
    if isinstance(data, dict):
        data = data.get("records", data.get("instances"))
    if not isinstance(data, list):
        raise InvalidInput(
            'send a list of records, {"records": [...]} or {"instances": [...]}', field="body"
        )
    return data, None


@router.post(
    "/{name}/predict",
    response_model=Predictions,
    openapi_extra=_PREDICT_BODY,
    dependencies=[Depends(auth.viewer)],
)
async def predict(
    project: str,
    name: str,
    request: Request,
    response: Response,
    home: Home = Depends(auth.get_home),
    models: ModelCache = Depends(get_models),
) -> Predictions:
    """Predict rows with the deployment's model. Values of the wrong kind are a 422 naming
    the row and column; unknown columns are ignored and listed in the
    ``X-Loopml-Ignored-Columns`` header."""
    started = time.perf_counter()
    records, first_line = await _records(request)
    # Loading, checking and predicting are blocking work: off the event loop.
    return await run_in_threadpool(
        _predict, request, response, home, models, project, name, records, first_line, started
    )


def _predict(
    request: Request,
    response: Response,
    home: Home,
    models: ModelCache,
    project: str,
    name: str,
    records: list[Any],
    first_line: int | None,
    started: float,
) -> Predictions:
    with home.db.session() as s:
        deployment, version = registry.served(s, project, name)
    rows = check_rows(records, version, first_line)
    model = models.get(version)
    if rows.ignored:
        response.headers[IGNORED_HEADER] = ",".join(rows.ignored)
    answers = answer(model, rows, version, deployment)
    _capture(request, deployment, records, answers, time.perf_counter() - started)
    return Predictions(model_version=version.number, predictions=answers)


def _capture(
    request: Request,
    deployment: Deployment,
    records: list[Any],
    answers: list[dict[str, Any]],
    seconds: float,
) -> None:
    share = deployment.capture_percent / 100
    if share <= 0:
        return
    writer: CaptureWriter = request.app.state.captures
    at = datetime.now(timezone.utc)
    latency = 1000 * seconds / max(1, len(answers))
    for row, said in zip(records, answers, strict=True):
        if share >= 1 or random.random() < share:
            writer.put(deployment.project, deployment.name, at, row, said, latency)


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=10_000, description="The true label or value.")


@router.post(
    "/{name}/predictions/{prediction_id}/feedback",
    response_model=Feedback,
    dependencies=[Depends(auth.labeller)],
)
def feedback(
    project: str,
    name: str,
    prediction_id: str,
    body: FeedbackRequest,
    key: ApiKey = Depends(auth.labeller),
    home: Home = Depends(auth.get_home),
) -> Feedback:
    """Tell the true label of a prediction (by the id it was answered with)."""
    with home.db.session() as s:
        return registry.add_feedback(s, project, name, prediction_id, body.label, key.name)


@router.get("/{name}/feedback", response_model=list[Feedback], dependencies=[Depends(auth.viewer)])
def list_feedback(project: str, name: str, home: Home = Depends(auth.get_home)) -> list[Feedback]:
    with home.db.session() as s:
        return registry.list_feedback(s, project, name)


@router.get("/{name}/captures", dependencies=[Depends(auth.viewer)])
def list_captures(
    project: str,
    name: str,
    since: datetime | None = None,
    limit: int = Query(default=1000, ge=1, le=100_000),
    home: Home = Depends(auth.get_home),
) -> list[dict[str, Any]]:
    """Captured predictions (SageMaker's capture format), oldest first; written about
    once a second, so the newest may not be here yet."""
    with home.db.session() as s:
        registry.get_deployment(s, project, name)
    found = []
    for record in read_captures(home.blobs, project, name, since=since):
        found.append(record)
        if len(found) >= limit:
            break
    return found


router.add_api_route(
    "/{name}/invocations",
    predict,
    methods=["POST"],
    response_model=Predictions,
    openapi_extra=_PREDICT_BODY,
    dependencies=[Depends(auth.viewer)],
    summary="Predict (SageMaker's name for it)",
)
