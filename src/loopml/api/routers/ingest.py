"""Ingest into a project's datasets: from a source the server reads, from uploaded files,
or by reading a dataset's source again. Each runs as a ``data.ingest`` job: 202 with the
job (follow its progress), or with ``?wait=`` the finished job, or the caller's error.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)
from pydantic import Field, ValidationError
from starlette.concurrency import run_in_threadpool

from loopml.api import auth
from loopml.api.routers.datasets import ReadOptions, SchemaChoices
from loopml.api.source_policy import check_source
from loopml.core.enums import JobState
from loopml.core.errors import InvalidInput
from loopml.core.ids import check_name
from loopml.core.schemas import ApiKey, Job
from loopml.data.sources import describe, put_upload
from loopml.home import Home
from loopml.jobs.failures import callers_error
from loopml.store import datasets, jobs, projects

router = APIRouter(prefix="/projects/{project}/datasets", tags=["datasets"])
MAX_UPLOAD_FILES = 1_000_000
KIND = "data.ingest"


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


async def _waited(
    request: Request, home: Home, job: Job, seconds: float, response: Response
) -> Job:
    """``job`` once it ends or ``seconds`` pass; a failure that is the caller's (bad data,
    a missing source) is raised as the error it was, so that it answers as a 4xx.

    The wait sleeps on the event loop: only each look at the job takes one of the
    threads that synchronous routes run on, so that many waiting clients hold none.
    """
    deadline = time.monotonic() + seconds
    while not job.state.finished and time.monotonic() < deadline:
        await asyncio.sleep(_POLL_SECONDS)
        if await request.is_disconnected():
            return job  # nobody is waiting any more
        job = await run_in_threadpool(_job, home, job.id)
    if job.state is JobState.failed and (error := callers_error(job)):
        raise error
    if job.state.finished:
        response.status_code = status.HTTP_200_OK
    return job


def _job(home: Home, job_id: str) -> Job:
    with home.db.session() as s:
        return jobs.get(s, job_id)


@router.post(
    "",
    response_model=Job,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(auth.maintainer)],
)
async def ingest_source(
    project: str,
    body: IngestRequest,
    request: Request,
    response: Response,
    wait: float = WAIT,
    home: Home = Depends(auth.get_home),
    key: ApiKey = Depends(auth.maintainer),
) -> Job:
    """Read a source into a new version of the dataset (created when new). A server path
    is read with the server's rights, so only admins may name one."""
    job = await run_in_threadpool(_start_ingest, home, project, body, key)
    return await _waited(request, home, job, wait, response)


def _start_ingest(home: Home, project: str, body: IngestRequest, key: ApiKey) -> Job:
    check_source(body.source, key)
    if describe(body.source) == "upload":
        raise InvalidInput("use the dataset's /uploads route to send files", field="source")
    return _enqueue(home, project, body.name, _params(home, body, body.name, body.source))


@router.post(
    "/{name}/uploads",
    response_model=Job,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(auth.maintainer)],
    # An image folder is one file per image: the byte cap (max_upload_bytes) limits it,
    # not Starlette's default of 1,000 files.
    form_limits={"max_files": MAX_UPLOAD_FILES},
)
async def upload(
    project: str,
    name: str,
    files: Annotated[
        list[UploadFile], File(description="One or more files; names may hold folders.")
    ],
    request: Request,
    response: Response,
    options: Annotated[str, Form(description="IngestOptions as JSON.")] = "{}",
    wait: float = WAIT,
    home: Home = Depends(auth.get_home),
) -> Job:
    """Upload files (streamed, size-capped) as a new version of the dataset."""
    job = await run_in_threadpool(_store_upload, home, project, name, files, options)
    return await _waited(request, home, job, wait, response)


def _store_upload(
    home: Home, project: str, name: str, files: list[UploadFile], options: str
) -> Job:
    """The uploaded files stored as the source of a queued ingest."""
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
    return job


@router.post(
    "/{name}/sync",
    response_model=Job,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(auth.maintainer)],
)
async def sync(
    project: str,
    name: str,
    request: Request,
    response: Response,
    wait: float = WAIT,
    home: Home = Depends(auth.get_home),
) -> Job:
    """Read the dataset's source again: new or changed files make a new version;
    content a version already holds returns that version."""
    job = await run_in_threadpool(_resync, home, project, name)
    return await _waited(request, home, job, wait, response)


def _resync(home: Home, project: str, name: str) -> Job:
    with home.db.session() as s:
        dataset = datasets.get(s, project, name)
    if dataset.source is None:
        raise InvalidInput(
            f"dataset {name!r} came from uploads and has no source to re-read; upload again",
            field="name",
        )
    options = IngestOptions.model_validate(dataset.options)
    return _enqueue(home, project, name, _params(home, options, name, dataset.source))
