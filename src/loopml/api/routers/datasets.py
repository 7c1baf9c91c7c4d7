"""Datasets of a project: read them, their versions, schema, quality report, profile and
rows; derive a version from another (new target, kinds or split), made at once.

Ingests (from a source, an upload, a re-sync) are in :mod:`loopml.api.routers.ingest`.
"""

from __future__ import annotations

import io
import json
from typing import Annotated, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from loopml.api import auth
from loopml.core.enums import ColumnKind
from loopml.core.errors import InvalidInput
from loopml.core.schemas import Dataset, DatasetVersion, QualityFinding
from loopml.data import load
from loopml.data.ingest import derive
from loopml.home import Home
from loopml.store import datasets

router = APIRouter(prefix="/projects/{project}/datasets", tags=["datasets"])


class ReadOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["csv", "tsv", "parquet", "json", "jsonl", "feather"] | None = None
    delimiter: str | None = Field(default=None, min_length=1, max_length=1)
    decimal: Literal[".", ","] | None = Field(
        default=None, description="CSV decimal mark (sniffed by default: ',' in 3,01)."
    )
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


_CURRENT = ("latest", "current")  # the dataset's current version (the newest, unless its
# source went back to an earlier version's content)


def _version(home: Home, project: str, name: str, version: str) -> DatasetVersion:
    if version not in _CURRENT and not version.isdigit():
        raise InvalidInput(
            f"version {version!r} is neither a number nor 'latest' (or 'current')",
            field="version",
        )
    with home.db.session() as s:
        return datasets.get_version(s, project, name, None if version in _CURRENT else int(version))


VersionPath = Annotated[str, "a version number, or 'latest' (or 'current') for the current one"]


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
