"""The ``serving.batch_predict`` job: a dataset version or a file, predicted by a
deployment's model and written as Parquet to the blob store."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loopml.core.errors import InvalidInput
from loopml.core.schemas import DatasetVersion
from loopml.data import load
from loopml.data.sources import stage
from loopml.data.tabular import read_table, tabular_format
from loopml.jobs.context import JobContext
from loopml.serving.batch import check_table, predict_table
from loopml.serving.models import ModelCache
from loopml.store import datasets, deployments
from loopml.store.deployments import Served

if TYPE_CHECKING:
    from loopml.automl import AutoML

CHUNK_ROWS = 50_000
PREFIX = "batch-predictions"


def batch_predict(
    ctx: JobContext,
    *,
    deployment: str,
    dataset: str | None = None,
    source: str | None = None,
    part: str = "all",
    include_inputs: bool = True,
    max_bytes: int = 10 * 2**30,
    max_expanded: int = 50 * 2**30,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Predict every row of ``dataset`` (``name`` or ``name@3``; ``part`` all, train or
    test) or of the tabular files of ``source`` with ``deployment``'s model. Each output
    row carries ``row``, its place in the input."""
    if (dataset is None) == (source is None):
        raise InvalidInput("name either a dataset version or a source", field="dataset")
    project = str(ctx.job.project)
    with ctx.db.session() as s:
        served = deployments.served(s, project, deployment)
    model = ModelCache(ctx.blobs, keep=1).get(served.model)
    ctx.progress(0.05, f"model v{served.model.number} loaded")
    with tempfile.TemporaryDirectory(prefix="loopml-batch-") as tmp:
        images = None
        if dataset is not None:
            frame, version = _dataset_rows(ctx, project, dataset, part)
            images = partial(load.with_images, ctx.blobs, version)
        else:
            assert source is not None
            frame = _source_rows(source, Path(tmp), max_bytes, max_expanded, storage_options)
        if frame.empty:
            raise InvalidInput(
                "there are no rows to predict", field="dataset" if dataset else "source"
            )
        out_path = Path(tmp) / "predictions.parquet"
        abstained, ignored = _write(ctx, model, served, frame, include_inputs, out_path, images)
        stored = ctx.blobs.put_file(f"{PREFIX}/{project}/{ctx.job.id}.parquet", out_path)
    ctx.log(f"{len(frame):,} rows predicted by v{served.model.number}")
    return {
        "deployment": deployment,
        "model_version": served.model.number,
        "input": dataset if dataset is not None else source,
        "rows": len(frame),
        "abstained": abstained,
        "ignored_columns": ignored,
        "output": {"key": stored.key, "sha256": stored.sha256, "bytes": stored.size},
    }


def _write(
    ctx: JobContext,
    model: AutoML,
    served: Served,
    frame: pd.DataFrame,
    include_inputs: bool,
    path: Path,
    images: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> tuple[int, list[str]]:
    """Predict ``frame`` chunk by chunk into one Parquet file; the abstained count and the
    columns the model ignored."""
    ignored: list[str] = []
    writer: pq.ParquetWriter | None = None
    inputs_schema: pa.Schema | None = None
    mixed: set[str] = set()
    abstained = 0
    try:
        for start in range(0, len(frame), CHUNK_ROWS):
            ctx.check_cancelled()
            chunk = frame.iloc[start : start + CHUNK_ROWS]
            # Images are read chunk by chunk; the output keeps their hashes, not their bytes.
            rows = check_table(images(chunk) if images else chunk, served.model)
            ignored = rows.ignored
            answers = predict_table(model, rows, served.model, served.deployment)
            if "abstained" in answers:
                abstained += int(answers["abstained"].sum())
            answers.insert(0, "row", chunk.index.to_numpy())
            table = pa.Table.from_pandas(answers, preserve_index=False)
            if include_inputs:
                if inputs_schema is None:  # typed from every row: a chunk may be all-null
                    mixed = _mixed(frame)
                    whole = _inputs(frame, mixed)
                    inputs_schema = pa.Schema.from_pandas(whole, preserve_index=False)
                inputs = _inputs(chunk, mixed)
                part = pa.Table.from_pandas(inputs, schema=inputs_schema, preserve_index=False)
                for field, column in zip(part.schema, part.columns, strict=True):
                    table = table.append_column(field, column)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table)
            done = min(len(frame), start + CHUNK_ROWS)
            ctx.progress(0.05 + 0.9 * done / len(frame), f"{done:,} of {len(frame):,} rows")
    finally:
        if writer is not None:
            writer.close()
    return abstained, ignored


def _mixed(rows: pd.DataFrame) -> set[str]:
    """Object columns holding values of more than one type (written as text)."""
    found = set()
    for name in rows.columns:
        if rows[name].dtype == object:
            kinds = {type(v) for v in rows[name] if v is not None and v == v}
            if len(kinds) > 1:
                found.add(str(name))
    return found


def _inputs(rows: pd.DataFrame, mixed: set[str]) -> pd.DataFrame:
    """Input columns as written beside the answers: ``input_<name>``; ``mixed`` columns
    as text, so that one Arrow type holds them."""
    out = rows.reset_index(drop=True)
    for name in mixed:
        out[name] = out[name].map(lambda v: v if v is None or v != v else str(v))
    return out.rename(columns=lambda c: f"input_{c}")


def _dataset_rows(
    ctx: JobContext, project: str, ref: str, part: str
) -> tuple[pd.DataFrame, DatasetVersion]:
    if part not in ("all", "train", "test"):
        raise InvalidInput(f"part must be all, train or test, not {part!r}", field="part")
    name, number = datasets.parse_ref(ref)
    with ctx.db.session() as s:
        version = datasets.get_version(s, project, name, number)
    rows = load.frame(ctx.blobs, version)
    if part == "all":
        return rows, version
    # Filtered here, not by load.frame, so that ``row`` keeps each row's place in the version.
    test = load.test_mask(ctx.blobs, version)
    return rows[test if part == "test" else ~test], version


def _source_rows(
    source: str,
    into: Path,
    max_bytes: int,
    max_expanded: int,
    storage_options: dict[str, Any] | None,
) -> pd.DataFrame:
    files = stage(source, into, max_bytes=max_bytes, storage_options=storage_options)
    tables = [
        read_table(f.path, f.name, max_expanded=max_expanded).to_pandas()
        for f in files
        if tabular_format(f.name)
    ]
    if not tables:
        names = ", ".join(f.name for f in files[:5]) or "nothing"
        raise InvalidInput(
            f"{source} holds no tabular file (CSV, Parquet, JSON, Feather); found {names}",
            field="source",
        )
    return pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
