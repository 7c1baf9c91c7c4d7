"""Labelling a dataset: add labels (checked against its items and classes), review them,
and apply the approved ones as a new dataset version."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopml.core.enums import LabelSource, LabelStatus, TaskType
from loopml.core.errors import Conflict, InvalidInput
from loopml.core.schemas import DatasetVersion, Label
from loopml.data.ingest import derive
from loopml.data.load import read_rows
from loopml.labels.items import item_keys
from loopml.store import datasets, labels, projects
from loopml.store.blobs import BlobStore
from loopml.store.db import Database

_SHOWN = 5
_BOOLEAN_WORDS = {"true", "false", "yes", "no", "1", "0"}


def add_labels(
    db: Database,
    blobs: BlobStore,
    project: str,
    dataset: str,
    pairs: Sequence[tuple[str, str]],
    *,
    author: str,
    author_key: str,
    source: LabelSource = LabelSource.human,
) -> list[Label]:
    """Record labels on items of the dataset's latest version.

    Items must exist; values must be one of the target's classes when it has any (or a
    number for regression). With review on (the default) labels wait for approval.
    """
    if not pairs:
        raise InvalidInput("no labels given", field="labels")
    with db.session() as s:
        version = datasets.get_version(s, project, dataset)
        review = projects.get(s, project).label_review
    target = _target(version)
    rows = read_rows(blobs, version)
    known = set(item_keys(rows, version.data_schema))
    unknown = [item for item, _ in pairs if item not in known]
    if unknown:
        raise InvalidInput(
            f"{len(unknown)} item(s) are not in {version.ref}: {', '.join(unknown[:_SHOWN])}"
            + (" ..." if len(unknown) > _SHOWN else ""),
            field="item",
        )
    _check_values(version, rows.column(target), [v for _, v in pairs])
    status = LabelStatus.pending_review if review else LabelStatus.approved
    with db.session() as s:
        return labels.add(
            s, project, dataset, pairs,
            source=source, author=author, author_key=author_key, status=status,
        )  # fmt: skip


def apply_labels(
    db: Database, blobs: BlobStore, project: str, dataset: str
) -> tuple[DatasetVersion, bool, dict[str, int]]:
    """A new version of the dataset whose target holds every approved label.

    The latest approved label of an item wins. Labels the version's target cannot hold
    (made for an earlier version whose target was another kind) are skipped and counted.
    Returns the version, whether it is new, and counts (labels applied, items changed,
    labels whose item is gone, labels skipped).
    """
    with db.session() as s:
        version = datasets.get_version(s, project, dataset)
        approved = labels.list_labels(s, project, dataset, status=LabelStatus.approved)
    if not approved:
        raise Conflict(f"{project}/{dataset} has no approved labels to apply", field="dataset")
    target = _target(version)
    latest = {label.item: label for label in approved}  # oldest first: the newest wins
    rows = read_rows(blobs, version)
    keys = item_keys(rows, version.data_schema)
    column = rows.column(target)
    misfit = _misfits(version, column, [label.value for label in latest.values()])
    unfit = misfit[0] if misfit else set()
    skipped = sum(label.value in unfit for label in latest.values())
    latest = {item: label for item, label in latest.items() if label.value not in unfit}
    if not latest:
        raise Conflict(
            f"none of {project}/{dataset}'s approved labels fit {version.ref}: {misfit[1]}"
            if misfit
            else f"{project}/{dataset} has no approved labels to apply",
            field="dataset",
        )
    values = column.to_pylist()
    present = set(keys.tolist())
    changed = 0
    for index, key in enumerate(keys):
        label = latest.get(key)
        if label is not None:
            new = _typed(label.value, column.type)
            changed += values[index] != new
            values[index] = new
    labelled = rows.set_column(
        rows.column_names.index(target),
        target,
        pa.array(values, type=_label_type(column.type, values)),
    )
    applied = sorted((item, label.value) for item, label in latest.items() if item in present)
    digest = hashlib.sha256(
        json.dumps([version.manifest.get("data_hash"), applied]).encode()
    ).hexdigest()
    counts = {
        "labels": len(applied),
        "changed": int(changed),
        "missing_items": len(latest) - len(applied),
        "skipped": skipped,
    }
    if not changed:
        # The latest version already holds every approved label: no new version (the
        # digest below chains on its data_hash, so deriving would make an identical one).
        with db.session() as s:
            labels.mark_applied(s, [latest[item].id for item, _ in applied], version.number)
        return version, False, counts
    made, created = derive(
        db, blobs, version, rows=labelled,
        manifest={"data_hash": digest, "labels": {**counts, "from_version": version.number}},
    )  # fmt: skip
    with db.session() as s:
        labels.mark_applied(s, [latest[item].id for item, _ in applied], made.number)
    return made, created, counts


def _target(version: DatasetVersion) -> str:
    target = version.data_schema.target
    if target is None:
        raise InvalidInput(
            f"{version.ref} has no target column to label; set one first "
            "(loopml data split P/N --target COLUMN)",
            field="dataset",
        )
    return target


def _check_values(version: DatasetVersion, column: pa.ChunkedArray, values: list[str]) -> None:
    misfit = _misfits(version, column, values)
    if misfit is not None:
        raise InvalidInput(misfit[1], field="value")


def _misfits(
    version: DatasetVersion, column: pa.ChunkedArray, values: list[str]
) -> tuple[set[str], str] | None:
    """The values the version's target cannot hold, and why (None: it holds them all)."""
    task = version.data_schema.task
    classify = task in (TaskType.binary, TaskType.multiclass)
    if task is TaskType.regression or (not classify and pa.types.is_floating(column.type)):
        bad = sorted({v for v in values if not _is_number(v)})
        why = f"regression labels must be numbers; got {', '.join(map(repr, bad[:_SHOWN]))}"
    elif pa.types.is_boolean(column.type):
        bad = sorted({v for v in values if v.strip().lower() not in _BOOLEAN_WORDS})
        why = (
            f"{', '.join(map(repr, bad[:_SHOWN]))}: a yes/no target takes true or false "
            "(also yes/no, 1/0)"
        )
    else:
        found = [v for v in pc.unique(column.drop_null()).to_pylist()]
        if not found:
            return None  # no classes yet (unlabelled images): any value starts one
        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
            # Classes stored as numbers (0/1 with gaps is a float column): 1 and 1.0 agree.
            known = {float(v) for v in found}
            bad = sorted({v for v in values if not _is_number(v) or float(v) not in known})
        else:
            bad = sorted({v for v in values if v not in {str(c) for c in found}})
        why = (
            f"{', '.join(map(repr, bad[:_SHOWN]))} not among the classes of "
            f"{version.data_schema.target!r}: {', '.join(sorted(map(_shown, found))[:20])}"
        )
    return (set(bad), why) if bad else None


def _shown(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _is_number(value: str) -> bool:
    try:
        return bool(np.isfinite(float(value)))
    except ValueError:
        return False


def _typed(value: str, kind: pa.DataType) -> Any:
    if pa.types.is_floating(kind):
        return float(value)
    if pa.types.is_integer(kind):
        number = float(value)  # beyond 64 bits or fractional: the column becomes float
        return int(number) if number.is_integer() and abs(number) < 2**63 else number
    if pa.types.is_boolean(kind):
        return value.strip().lower() in ("true", "1", "yes")
    return value


def _label_type(kind: pa.DataType, values: list[Any]) -> pa.DataType:
    # An all-missing target (unlabelled images) is typed null: labels make it text.
    if pa.types.is_null(kind):
        return pa.string()
    # A fractional label on a whole-number target (regression): pyarrow would truncate it.
    if pa.types.is_integer(kind) and any(isinstance(v, float) for v in values):
        return pa.float64()
    return kind
