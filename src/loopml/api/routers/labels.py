"""Labelling a dataset: its items and images, labels (added, imported, exported), their
review, and applying approved labels as a new version."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from loopml.api import auth
from loopml.core.enums import LabelSource, LabelStatus
from loopml.core.errors import NotFound
from loopml.core.schemas import ApiKey, DatasetVersion, Label
from loopml.data.load import read_rows
from loopml.home import Home
from loopml.labels import formats
from loopml.labels.items import item_keys
from loopml.labels.service import add_labels, apply_labels
from loopml.store import datasets, labels

router = APIRouter(prefix="/projects/{project}/datasets/{name}", tags=["labels"])
Format = Literal["csv", "jsonl", "label-studio"]


class NewLabel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item: str = Field(min_length=1, max_length=200, description="An item key from /items.")
    value: str = Field(min_length=1, max_length=10_000)


class NewLabels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: list[NewLabel] = Field(min_length=1, max_length=100_000)
    source: Literal["human", "model", "feedback"] = "human"


class Review(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool
    note: str = Field(default="", max_length=10_000)


class Item(BaseModel):
    item: str
    value: str | None = Field(description="The target's value in this version (None: unlabelled).")
    test: bool = Field(description="Whether the row is in the frozen test split.")


class Applied(BaseModel):
    version: DatasetVersion
    created: bool
    labels: int = Field(description="Approved labels applied (one per item).")
    changed: int = Field(description="Rows whose target changed.")
    missing_items: int = Field(description="Labelled items no longer in the dataset.")
    skipped: int = Field(
        default=0,
        description="Approved labels the target no longer takes (made for an earlier version "
        "whose target was another kind); they stay approved and unapplied.",
    )


@router.get("/items", response_model=list[Item], dependencies=[Depends(auth.viewer)])
def list_items(
    project: str,
    name: str,
    unlabelled: bool = Query(default=False, description="Only items without a target value."),
    limit: int = Query(default=100, ge=1, le=10_000),
    offset: int = Query(default=0, ge=0),
    home: Home = Depends(auth.get_home),
) -> list[Item]:
    """The latest version's items: keys to label, their current value and split."""
    from loopml.data.load import test_mask

    with home.db.session() as s:
        version = datasets.get_version(s, project, name)
    rows = read_rows(home.blobs, version)
    keys = item_keys(rows, version.data_schema)
    target = version.data_schema.target
    values = rows.column(target).to_pylist() if target else [None] * rows.num_rows
    test = test_mask(home.blobs, version)
    found = [
        Item(item=k, value=None if v is None else str(v), test=bool(t))
        for k, v, t in zip(keys, values, test, strict=True)
        if not unlabelled or v is None
    ]
    return found[offset : offset + limit]


@router.get(
    "/images/{sha256}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/jpeg": {}}}},
    dependencies=[Depends(auth.viewer)],
)
def get_image(
    project: str, name: str, sha256: str, home: Home = Depends(auth.get_home)
) -> Response:
    """An image of the dataset, by its SHA-256 (its item key)."""
    with home.db.session() as s:
        version = datasets.get_version(s, project, name)
    prefix = (version.manifest.get("images") or {}).get("prefix")
    if prefix is None or len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
        raise NotFound(f"{project}/{name} has no image {sha256!r}", field="sha256")
    data = home.blobs.get(f"{prefix}/{sha256}", sha256=sha256)
    media = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    return Response(
        data, media_type=media, headers={"Cache-Control": "max-age=31536000, immutable"}
    )


@router.get("/labels", response_model=list[Label], dependencies=[Depends(auth.viewer)])
def list_labels(
    project: str,
    name: str,
    status_: LabelStatus | None = Query(default=None, alias="status"),
    item: str | None = None,
    limit: int = Query(default=1000, ge=1, le=100_000),
    home: Home = Depends(auth.get_home),
) -> list[Label]:
    with home.db.session() as s:
        return labels.list_labels(s, project, name, status=status_, item=item, limit=limit)


@router.post(
    "/labels",
    response_model=list[Label],
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(auth.labeller)],
)
def create_labels(
    project: str,
    name: str,
    body: NewLabels,
    key: ApiKey = Depends(auth.labeller),
    home: Home = Depends(auth.get_home),
) -> list[Label]:
    """Label items; with review on they wait for a maintainer's approval."""
    pairs = [(label.item, label.value) for label in body.labels]
    return _add(home, project, name, pairs, key, LabelSource(body.source))


@router.post(
    "/labels/import",
    response_model=list[Label],
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(auth.labeller)],
)
def import_labels(
    project: str,
    name: str,
    data: Annotated[bytes, Body(media_type="application/octet-stream")],
    format: Format = Query(description="csv (item,label), jsonl or label-studio."),
    key: ApiKey = Depends(auth.labeller),
    home: Home = Depends(auth.get_home),
) -> list[Label]:
    """Import a label file (the request body) as labels from ``import``."""
    return _add(home, project, name, formats.parse(data, format), key, LabelSource.import_)


def _add(
    home: Home,
    project: str,
    name: str,
    pairs: list[tuple[str, str]],
    key: ApiKey,
    source: LabelSource,
) -> list[Label]:
    return add_labels(
        home.db, home.blobs, project, name, pairs, author=key.name, author_key=key.id,
        source=source,
    )  # fmt: skip


@router.get(
    "/labels/export",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}},
    dependencies=[Depends(auth.viewer)],
)
def export_labels(
    project: str,
    name: str,
    request: Request,
    format: Format = "csv",
    status_: LabelStatus | None = Query(default=None, alias="status"),
    home: Home = Depends(auth.get_home),
) -> Response:
    """Labels as a file; Label Studio tasks link image items to their image here."""
    with home.db.session() as s:
        found = labels.list_labels(s, project, name, status=status_)
        version = datasets.get_version(s, project, name)
    image_url = None
    if "images" in version.manifest:
        image_url = str(request.url_for("get_image", project=project, name=name, sha256="ITEM"))
        image_url = image_url.replace("ITEM", "{item}")
    data, media = formats.export(found, format, image_url)
    suffix = {"csv": "csv", "jsonl": "jsonl", "label-studio": "json"}[format]
    return Response(
        data,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{project}-{name}-labels.{suffix}"'},
    )


@router.post(
    "/labels/{label_id}/review", response_model=Label, dependencies=[Depends(auth.maintainer)]
)
def review_label(
    project: str,
    name: str,
    label_id: str,
    body: Review,
    key: ApiKey = Depends(auth.maintainer),
    home: Home = Depends(auth.get_home),
) -> Label:
    """Approve or reject a pending label (not one's own)."""
    with home.db.session() as s:
        return labels.review(
            s,
            project,
            name,
            label_id,
            approve=body.approve,
            reviewer=key.name,
            reviewer_key=key.id,
            note=body.note,
        )


@router.post("/labels/apply", response_model=Applied, dependencies=[Depends(auth.maintainer)])
def apply(
    project: str, name: str, response: Response, home: Home = Depends(auth.get_home)
) -> Applied:
    """A new version whose target holds the approved labels (201; 200 if one already does)."""
    version, created, counts = apply_labels(home.db, home.blobs, project, name)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return Applied(version=version, created=created, **counts)
