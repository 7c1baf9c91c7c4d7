"""Ingest: a source becomes an immutable, content-addressed dataset version.

Files are staged and hashed, read, described (schema, quality, profile) and split; the
rows (as Parquet), images and split go to the blob store under content-addressed keys,
and only then is the version recorded in the database. A failure at any step leaves no
version behind; identical content returns the version that already holds it.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from loopml.core.errors import NotFound
from loopml.core.ids import check_name
from loopml.core.schemas import DatasetVersion
from loopml.data import splits
from loopml.data.images import ImageSet
from loopml.data.lineage import changes
from loopml.data.parquet import describe_table, put_table
from loopml.data.quality import duplicate_rows, quality_report
from loopml.data.reading import check_read, holds_images, read_files, with_text_columns
from loopml.data.schema import infer_schema
from loopml.data.sources import StagedFile, describe, stage
from loopml.data.stats import Scratch, summarise
from loopml.store import datasets, projects
from loopml.store.blobs import BlobStore
from loopml.store.db import Database

OnProgress = Callable[[float, str], None]


def ingest(
    db: Database,
    blobs: BlobStore,
    project: str,
    name: str,
    source: str,
    *,
    read: dict[str, Any] | None = None,
    target: str | None = None,
    task: str | None = None,
    kinds: dict[str, str] | None = None,
    split: dict[str, Any] | None = None,
    description: str = "",
    max_bytes: int,
    max_expanded: int,
    storage_options: dict[str, Any] | None = None,
    remember_source: bool = True,
    shown_source: str | None = None,
    on_progress: OnProgress | None = None,
) -> tuple[DatasetVersion, bool]:
    """Make (or find) the version of dataset ``project/name`` that ``source`` holds.

    Returns the version and whether it is new. The dataset is created on first ingest.
    ``read`` holds reader options (``format``, ``delimiter``, ``encoding``, ``header``,
    ``classes`` for CIFAR archives); ``target``, ``task`` and ``kinds`` override schema
    inference; ``split`` chooses the frozen test split (see :mod:`loopml.data.splits`).
    ``shown_source`` is what the version says it came from, when not ``source`` itself
    (an upload's file names rather than where they were staged).
    """
    check_name(name)
    read = check_read(read or {})
    split_options = splits.check_split_options(split or {})
    progress = on_progress or (lambda fraction, message: None)
    with db.session() as s:
        projects.get(s, project)
        held = _versions(s, project, name)
    with tempfile.TemporaryDirectory(prefix="loopml-ingest-") as tmp:
        progress(0.0, f"reading {source}")
        files = stage(
            source,
            Path(tmp),
            max_bytes=max_bytes,
            blobs=blobs,
            storage_options=storage_options,
            on_progress=lambda done: progress(0.0, f"staged {done / 1e6:,.1f} MB"),
        )
        parse = with_text_columns(read, kinds or {}, files)
        if target is None and holds_images(files):
            target = "label"  # the class folders' names, or empty until images are labelled
        overrides = {"target": target, "task": task, "kinds": kinds or {}}
        record = _DatasetRecord(description=description, read_from_source=True)
        if remember_source and describe(source) != "upload":
            record.source = (source, {"read": read, **overrides, "split": split_options})
        # A version is known by what was read and asked for: content already held is found
        # before a byte of it is parsed. (A new dataset holds nothing: its files are hashed
        # while they are parsed.)
        if held:
            content = _content_hash(_data_hash(files, parse), overrides, split_options)
            found = _found(db, project, name, content, record, progress)
            if found is not None:
                return found, False
        progress(0.2, f"parsing {len(files)} file(s)")
        table, images = read_files(files, parse, max_expanded)
        # The reader's parsed blocks are freed but kept by Arrow's allocator: give them
        # back before describing adds its own.
        pa.default_memory_pool().release_unused()
    manifest: dict[str, Any] = {
        "files": [{"name": f.name, "sha256": f.sha256, "size": f.size} for f in files],
        "read": parse,
        "data_hash": _data_hash(files, parse),
    }
    predefined = images.predefined_test if images is not None else None
    return _record(
        db, blobs, project, name, table, manifest, overrides, split_options,
        source=shown_source or source, images=images, predefined=predefined, progress=progress,
        record=record,
    )  # fmt: skip


@dataclass
class _DatasetRecord:
    """What the dataset row gets with its version: made on the first, in one transaction."""

    description: str = ""
    source: tuple[str, dict[str, Any]] | None = None
    # An ingest reads what the source holds now: when that changed to an earlier version's
    # content, that version is current again (a derived version's twin moves nothing).
    read_from_source: bool = False

    def save(self, s: Any, project: str, name: str) -> None:
        try:
            datasets.get(s, project, name)
        except NotFound:
            datasets.create(s, project, name, description=self.description)
        if self.source is not None:
            datasets.set_source(s, project, name, *self.source)


def derive(
    db: Database,
    blobs: BlobStore,
    version: DatasetVersion,
    *,
    target: str | None = None,
    task: str | None = None,
    kinds: dict[str, str] | None = None,
    split: dict[str, Any] | None = None,
    rows: pa.Table | None = None,
    manifest: dict[str, Any] | None = None,
) -> tuple[DatasetVersion, bool]:
    """A version made from ``version``: another schema, test split or (with ``rows`` and
    their ``manifest`` entries, e.g. a new ``data_hash``) changed rows.

    Unset arguments keep the parent's choices. Changed rows keep the parent's test split
    when their number is the same, so that no row moves between training and test.
    """
    from loopml.data.load import read_rows, test_mask

    schema = version.data_schema
    chosen = version.manifest.get("choices") or {
        "target": schema.target,
        "task": schema.task.value if schema.task else None,
        "kinds": {c.name: c.kind.value for c in schema.columns if c.inferred is not None},
    }
    new_target = target is not None and target != chosen["target"]
    overrides = {
        "target": target if target is not None else chosen["target"],
        # Another target is another task unless one is named.
        "task": task if task is not None else (None if new_target else chosen["task"]),
        "kinds": {**chosen["kinds"], **(kinds or {})},
    }
    parent_split = version.split.get("options") or {
        k: version.split.get(k) for k in ("method", "test_size", "seed", "column")
    }
    predefined = None
    same_rows = rows is None or rows.num_rows == version.rows
    if version.split.get("method") == "predefined" or (
        split is None and rows is not None and same_rows
    ):
        predefined = test_mask(blobs, version).tolist()
        parent_split = {**parent_split, "method": "predefined"}
    split_options = splits.check_split_options(split if split is not None else parent_split)
    kept = {k: v for k, v in version.manifest.items() if k not in ("table", "profile")}
    return _record(
        db, blobs, version.project, version.dataset,
        rows if rows is not None else read_rows(blobs, version), {**kept, **(manifest or {})},
        overrides, split_options, source=version.source, images=None, predefined=predefined,
        progress=lambda fraction, message: None,
    )  # fmt: skip


def _record(
    db: Database,
    blobs: BlobStore,
    project: str,
    name: str,
    table: pa.Table,
    manifest: dict[str, Any],
    overrides: dict[str, Any],
    split_options: dict[str, Any],
    *,
    source: str | None,
    images: ImageSet | None,
    predefined: list[bool] | None,
    progress: OnProgress,
    record: _DatasetRecord | None = None,
) -> tuple[DatasetVersion, bool]:
    """Describe rows, store them and record the version (or find the one that has them)."""
    record = record or _DatasetRecord()
    progress(0.4, f"{table.num_rows:,} rows: describing columns")
    data_hash = manifest["data_hash"]
    prefix = f"datasets/{project}/{name}"
    table_key = f"{prefix}/tables/{data_hash}.parquet"
    with ThreadPoolExecutor(2) as pool:
        # Writing Parquet (the longest step) and hashing rows for the duplicate check run
        # while this thread describes the columns: all spend their time in Arrow and
        # numpy, which let go of the GIL.
        stored = (
            None if blobs.exists(table_key) else pool.submit(put_table, blobs, table_key, table)
        )
        repeated = pool.submit(duplicate_rows, table)
        work = Scratch()
        summaries = {n: summarise(table.column(n), work) for n in table.column_names}
        del work  # its arrays are not needed while the quality checks run
        image_columns = ("image",) if images is not None or "images" in manifest else ()
        schema = infer_schema(table, image_columns=image_columns, summaries=summaries, **overrides)
        content_hash = _content_hash(data_hash, overrides, split_options)
        found = _found(db, project, name, content_hash, record, progress)
        if found is not None:
            return found, False
        progress(0.5, "checking quality")
        split = pool.submit(splits.assign_split, table, schema, split_options, predefined)
        findings = quality_report(table, schema, summaries=summaries, duplicates=repeated.result())
        test, split_info = split.result()
        progress(0.7, "storing rows")
        table_info = stored.result() if stored else describe_table(blobs, table_key)
    manifest = {
        **manifest,
        "table": table_info,
        "columns": table.column_names,
        "profile": summaries,
        "choices": overrides,
    }
    if images is not None:
        manifest["images"] = _put_images(blobs, project, images, progress)
    split_table = pa.table({"test": pa.array(test, pa.bool_())})
    split_info["options"] = split_options
    split_info["blob"] = put_table(blobs, f"{prefix}/splits/{content_hash}.parquet", split_table)
    with db.session() as s:
        record.save(s, project, name)
        parent = _latest(s, project, name)
        version, created = datasets.add_version(
            s,
            project,
            name,
            content_hash=content_hash,
            rows=table.num_rows,
            source=source,
            data_schema=schema.model_dump(mode="json"),
            quality=[f.model_dump(mode="json") for f in findings],
            split=split_info,
            changes=changes(parent, manifest, table.num_rows, schema),
            manifest=manifest,
        )
        if record.read_from_source:
            datasets.read_from_source(s, project, name, version.number)
    progress(1.0, f"{version.ref}: {version.rows:,} rows")
    return version, created


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _put_images(
    blobs: BlobStore, project: str, images: ImageSet, progress: OnProgress
) -> dict[str, Any]:
    prefix = f"datasets/{project}/images"
    for i, (digest, data) in enumerate(images.images.items()):
        key = f"{prefix}/{digest}"
        if not blobs.exists(key):
            blobs.put(key, data)
        if i % 500 == 0:
            progress(0.7 + 0.25 * i / len(images.images), f"stored {i:,} images")
    return {"prefix": prefix, "count": len(images.images), "sizes": images.sizes}


def _content_hash(data_hash: str, overrides: dict[str, Any], split: dict[str, Any]) -> str:
    """What names a version: its rows' source, the schema choices and the split options."""
    return _digest({"data": data_hash, "schema": overrides, "split": split})


def _found(
    db: Database,
    project: str,
    name: str,
    content_hash: str,
    record: _DatasetRecord,
    progress: OnProgress,
) -> DatasetVersion | None:
    """The version of ``project/name`` that already holds ``content_hash``, if any (the
    dataset's record is saved with it, as for a new version)."""
    with db.session() as s:
        found = datasets.find_version(s, project, name, content_hash)
        if found is None:
            return None
        record.save(s, project, name)
        current = datasets.get_version(s, project, name).number
        if record.read_from_source and datasets.read_from_source(s, project, name, found.number):
            progress(1.0, f"{found.ref} holds this content: current again, in place of @{current}")
            return found
    progress(1.0, f"unchanged: {found.ref} already holds this content")
    return found


def _data_hash(files: list[StagedFile], read: dict[str, Any]) -> str:
    """What a version's rows come from: the files' names and hashes, and how they are read."""
    return _digest({"files": [[f.name, f.sha256] for f in files], "read": read})


def _versions(s: Any, project: str, name: str) -> int:
    try:
        return datasets.get(s, project, name).versions
    except NotFound:
        return 0


def _latest(s: Any, project: str, name: str) -> DatasetVersion | None:
    try:
        return datasets.get_version(s, project, name)
    except NotFound:
        return None
