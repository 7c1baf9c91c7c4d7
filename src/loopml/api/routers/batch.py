"""Batch predictions of a deployment: a dataset version or a file predicted as a job
(kind ``serving.batch_predict``) and written as Parquet; the output can be downloaded as
Parquet or CSV."""

from __future__ import annotations

import base64
import io
from typing import Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from loopml.api import auth
from loopml.api.source_policy import check_source
from loopml.core.enums import JobState
from loopml.core.errors import Conflict, InvalidInput, NotFound
from loopml.core.schemas import ApiKey, Job
from loopml.data.sources import describe
from loopml.home import Home
from loopml.store import deployments, jobs

router = APIRouter(
    prefix="/projects/{project}/deployments/{name}/batch-predictions", tags=["predictions"]
)
KIND = "serving.batch_predict"


class BatchRequest(BaseModel):
    """What to predict: a dataset version of the project, or a source of tabular files."""

    model_config = ConfigDict(extra="forbid")

    dataset: str | None = Field(default=None, description="`name` (latest) or `name@3`.")
    part: Literal["all", "train", "test"] = Field(
        default="all", description="Of a dataset version: every row, or one part of its split."
    )
    source: str | None = Field(
        default=None,
        description="A URL or `builtin:<name>` (admins: also a server path) of CSV, "
        "Parquet, JSON or Feather files.",
    )
    include_inputs: bool = Field(
        default=True, description="Write the input columns (as `input_<name>`) beside answers."
    )

    @model_validator(mode="after")
    def _one_input(self) -> BatchRequest:
        if (self.dataset is None) == (self.source is None):
            raise ValueError("name either a dataset (name or name@version) or a source")
        if self.source is not None and self.part != "all":
            raise ValueError("part picks rows of a dataset version; a source is read whole")
        return self


@router.post(
    "",
    response_model=Job,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(auth.maintainer)],
)
def start_batch(
    project: str,
    name: str,
    body: BatchRequest,
    home: Home = Depends(auth.get_home),
    key: ApiKey = Depends(auth.maintainer),
) -> Job:
    """Queue a batch prediction; the job's result names the Parquet file it wrote."""
    params = body.model_dump(exclude_none=True)
    if body.source is not None:
        check_source(body.source, key)
        if describe(body.source) == "upload":
            raise InvalidInput("name a URL, a built-in dataset or a dataset", field="source")
        params["max_bytes"] = home.settings.max_upload_bytes
        params["max_expanded"] = home.settings.max_expanded_bytes
    return queue_batch(home, project, name, params)


def queue_batch(home: Home, project: str, name: str, params: dict[str, object]) -> Job:
    with home.db.session() as s:
        deployments.get_deployment(s, project, name)
        return jobs.enqueue(s, KIND, {**params, "deployment": name}, project=project)


@router.get("", response_model=list[Job], dependencies=[Depends(auth.viewer)])
def list_batches(
    project: str,
    name: str,
    limit: int = Query(default=100, ge=1, le=1000),
    home: Home = Depends(auth.get_home),
) -> list[Job]:
    """This deployment's batch predictions, newest first."""
    with home.db.session() as s:
        deployments.get_deployment(s, project, name)
        return jobs.list_deployment_jobs(s, project, KIND, name, limit)


@router.get("/{job_id}/output", dependencies=[Depends(auth.viewer)])
def batch_output(
    project: str,
    name: str,
    job_id: str,
    format: Literal["parquet", "csv"] = "parquet",
    home: Home = Depends(auth.get_home),
) -> Response:
    """The predictions a finished batch wrote."""
    with home.db.session() as s:
        try:
            job = jobs.get(s, job_id)
        except NotFound:
            job = None
    if job is None or job.project != project or job.kind != KIND:
        raise NotFound(f"no batch prediction {job_id!r} in project {project!r}", field="job_id")
    if job.params.get("deployment") != name:
        raise NotFound(f"batch prediction {job_id} was made by another deployment", field="name")
    if job.state is not JobState.succeeded:
        raise Conflict(
            f"batch prediction {job_id} is {job.state.value}; its output exists once it succeeds",
            field="job_id",
        )
    output = job.result["output"]
    data = home.blobs.get(output["key"], sha256=output["sha256"])
    filename = f"{name}-{job_id}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if format == "parquet":
        return Response(data, media_type="application/vnd.apache.parquet", headers=headers)
    table = pq.read_table(io.BytesIO(data))
    for i, field in enumerate(table.schema):
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            # CSV holds text: bytes (images from a Parquet source) as base64
            text = pa.array([None if v is None else base64.b64encode(v).decode()
                             for v in table.column(i).to_pylist()], pa.string())  # fmt: skip
            table = table.set_column(i, field.name, text)
    sink = io.BytesIO()
    pacsv.write_csv(table, sink)
    return Response(sink.getvalue(), media_type="text/csv", headers=headers)
