"""Datasets of a project: ingest from a source or an upload, re-sync, and read versions,
their schema, quality report, profile and rows.

Ingests run as ``data.ingest`` jobs (202 with the job; follow its progress); a version
derived from another (new target, kinds or split) is made at once.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from typing import Annotated, Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loopml.api import auth
from loopml.api.source_policy import check_source
from loopml.core.enums import ColumnKind, JobState
from loopml.core.errors import InvalidInput
from loopml.core.ids import check_name
from loopml.core.schemas import ApiKey, Dataset, DatasetVersion, Job, QualityFinding
from loopml.data import load
from loopml.data.ingest import derive
from loopml.data.sources import describe, put_upload
from loopml.home import Home
from loopml.jobs.failures import callers_error
from loopml.store import datasets, jobs, projects

MAX_UPLOAD_FILES = 1_000_000
router = APIRouter(prefix="/projects/{project}/datasets", tags=["datasets"])
KIND = "data.ingest"


class ReadOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["csv", "tsv", "parquet", "json", "jsonl", "feather"] | None = None
    delimiter: str | None = Field(default=None, min_length=1, max_length=1)
    encoding: str | None = None
    header: bool | None = None
    classes: list[str] | None = Field(default=None, description="CIFAR archives: class names.")


class SplitOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["auto", "random", "stratified", "grouped", "time", "predefined"] = "auto"
    test_size: float = Field(default=0.2, ge=0, lt=1)
    seed: int = Field(default=0, ge=0, lt=2**32)
    column: str | None = Field(default=None, description="Group or time column.")


class SchemaChoices(BaseModel):
    """What the version should say about its columns, replacing what inference says."""

    model_config = ConfigDict(extra="forbid")

    target: str | None = None
    task: Literal["binary", "multiclass", "regression"] | None = None
    kinds: dict[str, ColumnKind] | None = None
    split: SplitOptions | None = None


class IngestOptions(SchemaChoices):
    read: ReadOptions | None = None
    description: str = ""


class IngestRequest(IngestOptions):
    """A source the server reads: ``builtin:<name>``, a URL, or (admins only) a server path."""

    name: str = Field(description="The dataset's name; created on first ingest.")
    source: str = Field(min_length=1)


def _params(home: Home, options: IngestOptions, name: str, source: str) -> dict[str, Any]:
    body = options.model_dump(mode="json", exclude_none=True, exclude={"name", "source"})
    scheme = home.settings.resolved_storage_url.split("://", 1)[0]
    same_storage = scheme != "file" and source.startswith(scheme + "://")
    return {
        **body,
        "dataset": name,
        "source": source,
        "max_bytes": home.settings.max_upload_bytes,
        "max_expanded": home.settings.max_expanded_bytes,
        # A source on the blob store's kind of storage is read with its credentials.
        "storage_options": home.settings.storage_options if same_storage else {},
    }


def _distinct_names(names: list[str]) -> None:
    """Two uploaded files of one name would be staged over each other: refuse them."""
    seen: set[str] = set()
    for name in names:
        key = "/".join(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))
        if key in seen:
            raise InvalidInput(
                f"two uploaded files are named {name!r}; the files of an upload need "
                "distinct names (send folders with their sub-folder names)",
                field="files",
            )
        seen.add(key)


def _enqueue(home: Home, project: str, name: str, params: dict[str, Any]) -> Job:
    check_name(name)
    with home.db.session() as s:
        return jobs.enqueue(s, KIND, params, project=project)


WAIT = Query(
    0.0,
    ge=0,
    le=60,
    description="Seconds to wait for the ingest to end. Ended: 200 with the job, its result "
    "naming the version; or, when the data was at fault, the error as a problem (a malformed "
    "CSV: 422 naming the line and column). Still running then, or not waited for: 202.",
)


_POLL_SECONDS = 0.2


def _waited(home: Home, job: Job, seconds: float, response: Response) -> Job:
    """``job`` once it ends or ``seconds`` pass; a failure that is the caller's (bad data,
    a missing source) is raised as the error it was, so that it answers as a 4xx."""
    deadline = time.monotonic() + seconds
    while not job.state.finished and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
        with home.db.session() as s:
            job = jobs.get(s, job.id)
    if job.state is JobState.failed and (error := callers_error(job.error, job.id)):
        raise error
    if job.state.finished:
        response.status_code = status.HTTP_200_OK
    return job


@router.post(
    "",
    response_model=Job,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(auth.maintainer)],
)
def ingest_source(
    project: str,
    body: IngestRequest,
    response: Response,
    wait: float = WAIT,
    home: Home = Depends(auth.get_home),
    key: ApiKey = Depends(auth.maintainer),
) -> Job:
    """Read a source into a new version of the dataset (created when new). A server path
    is read with the server's rights, so only admins may name one."""
    check_source(body.source, key)
    if describe(body.source) == "upload":
        raise InvalidInput("use the dataset's /uploads route to send files", field="source")
    job = _enqueue(home, project, body.name, _params(home, body, body.name, body.source))
    return _waited(home, job, wait, response)


@router.post(
    "/{name}/uploads",
    response_model=Job,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(auth.maintainer)],
    # An image folder is one file per image: the byte cap (max_upload_bytes) limits it,
    # not Starlette's default of 1,000 files.
    form_limits={"max_files": MAX_UPLOAD_FILES},
)
def upload(
    project: str,
    name: str,
    files: Annotated[
        list[UploadFile], File(description="One or more files; names may hold folders.")
    ],
    response: Response,
    options: Annotated[str, Form(description="IngestOptions as JSON.")] = "{}",
    wait: float = WAIT,
    home: Home = Depends(auth.get_home),
) -> Job:
    """Upload files (streamed, size-capped) as a new version of the dataset."""
    try:
        parsed = IngestOptions.model_validate_json(options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "options"
        raise InvalidInput(f"options: {where}: {first['msg']}", field=f"options.{where}") from None
    check_name(name)
    _distinct_names([f.filename or "upload" for f in files])
    with home.db.session() as s:
        projects.get(s, project)  # before anything is stored
    prefix = f"uploads/{project}/{uuid.uuid4().hex}"
    try:
        source = put_upload(home.blobs, prefix, [(f.filename or "upload", f.file) for f in files])
        params = _params(home, parsed, name, source)
        shown = [f.filename or "upload" for f in files]
        params["shown_source"] = (
            "upload: "
            + ", ".join(shown[:3])
            + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")
        )
        job = _enqueue(home, project, name, params)
    except BaseException:
        # A refused upload (a bad file name, ...) keeps none of its files.
        for blob in list(home.blobs.list(prefix + "/")):
            home.blobs.delete(blob.key)
        raise
    return _waited(home, job, wait, response)


@router.post(
    "/{name}/sync",
    response_model=Job,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(auth.maintainer)],
)
def sync(
    project: str,
    name: str,
    response: Response,
    wait: float = WAIT,
    home: Home = Depends(auth.get_home),
) -> Job:
    """Read the dataset's source again: new or changed files make a new version;
    content a version already holds returns that version."""
    with home.db.session() as s:
        dataset = datasets.get(s, project, name)
    if dataset.source is None:
        raise InvalidInput(
            f"dataset {name!r} came from uploads and has no source to re-read; upload again",
            field="name",
        )
    options = IngestOptions.model_validate(dataset.options)
    job = _enqueue(home, project, name, _params(home, options, name, dataset.source))
    return _waited(home, job, wait, response)


@router.get("", response_model=list[Dataset], dependencies=[Depends(auth.viewer)])
def list_datasets(project: str, home: Home = Depends(auth.get_home)) -> list[Dataset]:
    with home.db.session() as s:
        return datasets.list_all(s, project)


@router.get("/{name}", response_model=Dataset, dependencies=[Depends(auth.viewer)])
def get_dataset(project: str, name: str, home: Home = Depends(auth.get_home)) -> Dataset:
    with home.db.session() as s:
        return datasets.get(s, project, name)


@router.get(
    "/{name}/versions", response_model=list[DatasetVersion], dependencies=[Depends(auth.viewer)]
)
def list_versions(
    project: str, name: str, home: Home = Depends(auth.get_home)
) -> list[DatasetVersion]:
    with home.db.session() as s:
        return datasets.list_versions(s, project, name)


def _version(home: Home, project: str, name: str, version: str) -> DatasetVersion:
    if version != "latest" and not version.isdigit():
        raise InvalidInput(f"version {version!r} is neither a number nor 'latest'", field="version")
    with home.db.session() as s:
        return datasets.get_version(s, project, name, None if version == "latest" else int(version))


VersionPath = Annotated[str, "a version number or 'latest'"]


@router.get(
    "/{name}/versions/{version}",
    response_model=DatasetVersion,
    dependencies=[Depends(auth.viewer)],
)
def get_version(
    project: str, name: str, version: VersionPath, home: Home = Depends(auth.get_home)
) -> DatasetVersion:
    """A version (a number or ``latest``): schema, quality, split, changes and manifest."""
    return _version(home, project, name, version)


@router.get(
    "/{name}/versions/{version}/quality",
    response_model=list[QualityFinding],
    dependencies=[Depends(auth.viewer)],
)
def get_quality(
    project: str,
    name: str,
    version: VersionPath,
    severity: Literal["info", "warning", "error"] | None = None,
    home: Home = Depends(auth.get_home),
) -> list[QualityFinding]:
    """The version's quality findings, most severe first (optionally of one severity)."""
    found = _version(home, project, name, version).quality
    return [f for f in found if severity is None or f.severity.value == severity]


@router.post(
    "/{name}/versions/{version}/derive",
    response_model=DatasetVersion,
    dependencies=[Depends(auth.maintainer)],
)
def derive_version(
    project: str,
    name: str,
    version: VersionPath,
    body: SchemaChoices,
    response: Response,
    home: Home = Depends(auth.get_home),
) -> DatasetVersion:
    """A version with the same rows and another target, task, column kinds or test split
    (201 when new, 200 when a version already says exactly that)."""
    parent = _version(home, project, name, version)
    choices = body.model_dump(mode="json", exclude_none=True)
    made, created = derive(home.db, home.blobs, parent, **choices)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return made


@router.get(
    "/{name}/versions/{version}/rows",
    response_class=Response,
    responses={
        200: {
            "content": {
                "text/csv": {},
                "application/vnd.apache.parquet": {},
                "application/json": {},
            }
        }
    },
    dependencies=[Depends(auth.viewer)],
)
def get_rows(
    project: str,
    name: str,
    version: VersionPath,
    part: Literal["all", "train", "test"] = "all",
    format: Literal["csv", "parquet", "json"] = "csv",
    limit: int | None = Query(default=None, ge=1),
    home: Home = Depends(auth.get_home),
) -> Response:
    """The version's rows (or its training or frozen test part) as CSV, Parquet or JSON."""
    found = _version(home, project, name, version)
    rows = load.read_rows(home.blobs, found)
    if part != "all":
        mask = load.test_mask(home.blobs, found)
        rows = rows.filter(pa.array(mask if part == "test" else ~mask))
    if limit is not None:
        rows = rows.slice(0, limit)
    buffer = io.BytesIO()
    if format == "parquet":
        pq.write_table(rows, buffer)
        media = "application/vnd.apache.parquet"
    elif format == "csv":
        pacsv.write_csv(rows, buffer)
        media = "text/csv; charset=utf-8"
    else:
        buffer.write(json.dumps(rows.to_pylist(), default=str).encode())
        media = "application/json"
    filename = f"{project}-{name}-{found.number}-{part}.{format}"
    return Response(
        buffer.getvalue(),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
