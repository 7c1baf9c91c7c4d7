"""Reading a dataset version back: its rows, checked against their recorded hash, and its
training and frozen test parts as frames with the schema's column kinds applied."""

from __future__ import annotations

import io
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loopml.core.enums import ColumnKind
from loopml.core.errors import InvalidInput
from loopml.core.schemas import DatasetVersion
from loopml.store.blobs import BlobStore

Part = Literal["all", "train", "test"]


def read_rows(blobs: BlobStore, version: DatasetVersion) -> pa.Table:
    """Every row of a version; content changed since ingest is an IntegrityError."""
    table = version.manifest["table"]
    return pq.read_table(io.BytesIO(blobs.get(table["key"], sha256=table["sha256"])))


def test_mask(blobs: BlobStore, version: DatasetVersion) -> np.ndarray:
    """True for the rows of the version's frozen test split."""
    blob = version.split["blob"]
    split = pq.read_table(io.BytesIO(blobs.get(blob["key"], sha256=blob["sha256"])))
    return np.asarray(split.column("test").to_numpy(zero_copy_only=False), dtype=bool)


def frame(
    blobs: BlobStore, version: DatasetVersion, part: Part = "all", *, images: bool = False
) -> pd.DataFrame:
    """Rows of a version as pandas, with overridden column kinds applied; with ``images``,
    image columns hold each image's bytes (checked against its hash), not the hash."""
    rows = read_rows(blobs, version)
    if part != "all":
        mask = test_mask(blobs, version)
        rows = rows.filter(pa.array(mask if part == "test" else ~mask))
    out = rows.to_pandas()
    for column in version.data_schema.columns:
        if column.inferred is None or column.name not in out:
            continue
        values = out[column.name]
        if column.kind is ColumnKind.categorical:
            out[column.name] = values.astype("string").astype(object).where(values.notna())
        elif column.kind in (ColumnKind.numeric, ColumnKind.integer):
            out[column.name] = pd.to_numeric(values, errors="coerce")
        elif column.kind is ColumnKind.datetime:
            out[column.name] = pd.to_datetime(values, errors="coerce", format="mixed")
    return with_images(blobs, version, out) if images else out


def with_images(blobs: BlobStore, version: DatasetVersion, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with each image column's hashes replaced by the images' bytes (checked
    against the hashes)."""
    prefix = version.manifest.get("images", {}).get("prefix")
    rows = rows.copy()
    for column in version.data_schema.columns:
        if column.kind is not ColumnKind.image or column.name not in rows or prefix is None:
            continue
        rows[column.name] = pd.Series(
            [
                None if h is None else blobs.get(f"{prefix}/{h}", sha256=h)
                for h in rows[column.name]
            ],
            index=rows.index,
            dtype=object,
        )
    return rows


def features_and_target(
    data: pd.DataFrame, version: DatasetVersion, target: str | None = None
) -> tuple[pd.DataFrame, pd.Series, str]:
    """Split a version's frame into features and target; rows without a target are left out.

    Identifier columns are never features; image columns are when they hold the images
    (``frame(..., images=True)``), not their hashes.
    """
    schema = version.data_schema
    column = target or schema.target
    if column is None:
        raise InvalidInput(
            f"{version.ref} has no target column; name one (the columns are: "
            f"{', '.join(c.name for c in schema.columns)})",
            field="target",
        )
    if column not in data.columns:
        raise InvalidInput(f"{version.ref} has no column {column!r}", field="target")
    dropped = [
        c.name
        for c in schema.columns
        if c.name != column
        and c.name in data.columns
        and (
            c.kind is ColumnKind.identifier
            or (c.kind is ColumnKind.image and not _holds_bytes(data[c.name]))
        )
    ]
    labelled = data[data[column].notna()]
    return labelled.drop(columns=[column, *dropped]), labelled[column], column


def _holds_bytes(values: pd.Series) -> bool:
    present = values.dropna()
    return not present.empty and isinstance(present.iloc[0], bytes)
