"""Predictions of a deployment: ``POST .../deployments/{name}/predict`` (alias
``/invocations``, as SageMaker names it), feedback on them, and their captures.

Predict takes JSON records (a list, ``{"records": [...]}`` or ``{"instances": [...]}``)
or CSV with a header, and answers one prediction per row. A canary challenger answers
its share of requests; a shadow challenger predicts a copy in the background.
"""

from __future__ import annotations

import io
import json
import logging
import random
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from loopml.api import auth
from loopml.api.lookups import Lookups
from loopml.api.problems import status_of
from loopml.core.enums import ChallengerMode
from loopml.core.errors import InvalidInput, LoopmlError
from loopml.core.schemas import ApiKey, Deployment, Feedback, ModelVersion
from loopml.home import Home
from loopml.serving.batching import Batcher
from loopml.serving.capture import CaptureWriter, read_captures
from loopml.serving.models import ModelCache
from loopml.serving.predict import MAX_ROWS, answer, check_rows, inputs_of
from loopml.serving.shadow import ShadowRunner
from loopml.store import deployments
from loopml.store.deployments import Served

if TYPE_CHECKING:
    from loopml.automl import AutoML

router = APIRouter(prefix="/projects/{project}/deployments", tags=["predictions"])
log = logging.getLogger("loopml.predict")
IGNORED_HEADER = "X-Loopml-Ignored-Columns"
IMAGE_TYPES = ("image/png", "image/jpeg")
INLINE_ROWS = 32
VARIANT_HEADER = "X-Loopml-Variant"
GUARD = auth.viewer  # who may predict


class Predictions(BaseModel):
    model_version: int
    predictions: list[dict[str, Any]] = Field(
        description="Per row: label (or value), probabilities, confidence, abstained, "
        "prediction_id, model_version."
    )


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


class _Image(bytes):
    """An image sent as the body (or a multipart file): one record of the model's image
    column, once the model is known."""


async def _records(request: Request) -> tuple[list[Any], int | None]:
    """The request's records, and the file line of the first one when they came as CSV."""
    media = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if media == "multipart/form-data":
        form = await request.form(max_files=MAX_ROWS, max_fields=MAX_ROWS)
        files = [v for _, v in form.multi_items() if not isinstance(v, str)]
        if not files:
            raise InvalidInput("the multipart body holds no file", field="body")
        return [_Image(await f.read()) for f in files], None
    body = await request.body()
    if media in IMAGE_TYPES:
        return [_Image(body)], None
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
            f"content type {media!r}: send application/json records, text/csv, or an "
            "image (image/png, image/jpeg, or files in multipart/form-data)",
            field="body",
        )
    try:
        data = orjson.loads(body)  # a fifth of json's time on a request's rows
    except orjson.JSONDecodeError:
        # NaN and Infinity (which Python's json writes) and other encodings than UTF-8
        # are read as json reads them; json also names where the body stops being JSON.
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
    dependencies=[Depends(GUARD)],
)
async def predict(project: str, name: str, request: Request) -> Response:
    """Predict rows with the deployment's model. Values of the wrong kind are a 422 naming
    the row and column; unknown columns are ignored and listed in the
    ``X-Loopml-Ignored-Columns`` header."""
    return await respond(request, project, name)


async def respond(request: Request, project: str, name: str) -> Response:
    """The answer to a predict request whose key ``GUARD`` has admitted (by the route's
    dependency, or by :class:`loopml.api.predict_lane.PredictLane`)."""
    started = time.perf_counter()
    records, first_line = await _records(request)
    lookups: Lookups = request.app.state.lookups
    served = lookups.fresh_served(project, name)
    if served is None:
        served = await run_in_threadpool(lookups.served, project, name)
    version, variant, shadow = choose_variant(served)
    records = image_records(records, served.model)
    models: ModelCache = request.app.state.models
    model = models.loaded(version)
    # A few rows for a loaded model are answered on the event loop: handing them to a
    # thread costs more than predicting them. Loading and big requests go to a thread.
    # Images are decoded in a thread whatever their number: one large image would hold
    # the event loop, and every other request, for as long as it takes.
    inline = not inputs_of(version).has_images
    writer: CaptureWriter = request.app.state.captures
    try:
        if model is not None and inline and len(records) <= INLINE_ROWS:
            rows = check_rows(records, version, first_line)
            batcher: Batcher = request.app.state.batcher
            predicted = await batcher.predict(model, rows.frame)
            answers = answer(model, rows, version, served.deployment, predicted)
            ignored = rows.ignored
        else:
            answers, ignored = await run_in_threadpool(
                answer_rows, None, served, version, records, first_line, models
            )
    except Exception as exc:
        if variant != "canary":
            _rejected(writer, served.deployment, exc, len(records))
            raise
        # Rows the canary refuses (it may read a column the served model ignores), or a
        # canary that fails, are answered by the served model: a canary never fails a
        # request that would succeed.
        log.warning("canary v%s failed; the served model answers", version.number, exc_info=True)
        version, variant = served.model, "production"
        answers, ignored = await run_in_threadpool(
            answer_rows, None, served, version, records, first_line, models
        )
    seconds = time.perf_counter() - started
    # A request copied to the shadow is captured whole, so every shadow answer has its pair.
    capture = (writer, served.deployment, records, answers, seconds, variant, shadow)
    if len(answers) <= INLINE_ROWS:
        capture_rows(*capture)
    else:  # encoding many rows would hold the event loop
        await run_in_threadpool(capture_rows, *capture)
    if shadow:
        assert served.challenger is not None
        shadows: ShadowRunner = request.app.state.shadows
        shadows.submit(served.deployment, served.challenger, records, first_line, answers)
    headers = {VARIANT_HEADER: variant}
    if ignored:
        headers[IGNORED_HEADER] = ",".join(ignored)
    body = {"model_version": version.number, "predictions": answers}
    content = orjson.dumps(body, default=str, option=orjson.OPT_NON_STR_KEYS)
    return Response(content, media_type="application/json", headers=headers)


def _rejected(writer: CaptureWriter, deployment: Deployment, exc: Exception, rows: int) -> None:
    """Count a refused (422) or failed (500) request for monitoring, sampled as its
    answers would have been captured (so the share of rows refused stays true)."""
    if random.random() * 100 >= deployment.capture_percent:
        return
    status, message, column = 500, type(exc).__name__, None
    if isinstance(exc, LoopmlError):  # the status its problem response carries
        status, message, column = status_of(exc), exc.message, exc.extra.get("column")
    writer.reject(
        deployment.project, deployment.name, datetime.now(timezone.utc),
        status=status, message=message, rows=rows, column=column,
    )  # fmt: skip


def image_records(records: list[Any], version: ModelVersion) -> list[Any]:
    """Images sent as the body become records of the model's image column."""
    if not records or not isinstance(records[0], _Image):
        return records
    columns = [c["name"] for c in version.inputs if c["kind"] == "image"]
    if len(columns) != 1:
        raise InvalidInput(
            f"model v{version.number} reads {len(columns) or 'no'} image columns; send JSON "
            "records (images as base64 text) or CSV",
            field="body",
        )
    return [{columns[0]: bytes(image)} for image in records]


def choose_variant(served: Served) -> tuple[ModelVersion, str, bool]:
    """Which model answers this request, its variant name, and whether a shadow gets a copy."""
    trial = served.deployment.challenger
    if trial and served.challenger and random.random() * 100 < trial.percent:
        if trial.mode is ChallengerMode.canary:
            return served.challenger, "canary", False
        return served.model, "production", True
    return served.model, "production", False


def answer_rows(
    model: AutoML | None,
    served: Served,
    version: ModelVersion,
    records: list[Any],
    first_line: int | None,
    models: ModelCache | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    rows = check_rows(records, version, first_line)
    if model is None:
        assert models is not None
        model = models.get(version)
    return answer(model, rows, version, served.deployment), rows.ignored


def capture_rows(
    writer: CaptureWriter,
    deployment: Deployment,
    records: list[Any],
    answers: list[dict[str, Any]],
    seconds: float,
    variant: str,
    every: bool = False,
) -> None:
    share = 1.0 if every else deployment.capture_percent / 100
    if share <= 0:
        return
    latency = 1000 * seconds / max(1, len(answers))
    if share < 1:
        kept = [i for i in range(len(answers)) if random.random() < share]
        records, answers = [records[i] for i in kept], [answers[i] for i in kept]
    if answers:
        project, name = deployment.project, deployment.name
        writer.put_many(project, name, None, records, answers, latency, variant)


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
        return deployments.add_feedback(s, project, name, prediction_id, body.label, key.name)


@router.get("/{name}/feedback", response_model=list[Feedback], dependencies=[Depends(auth.viewer)])
def list_feedback(project: str, name: str, home: Home = Depends(auth.get_home)) -> list[Feedback]:
    with home.db.session() as s:
        return deployments.list_feedback(s, project, name)


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
        deployments.get_deployment(s, project, name)
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
    dependencies=[Depends(GUARD)],
    summary="Predict (SageMaker's name for it)",
)
