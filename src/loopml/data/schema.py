"""Schema inference: what each column holds, which column is likely the target, what task.

Every inferred value can be overridden; overrides are checked against the data so that
a version never records a schema its rows contradict.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from loopml.core.enums import ColumnKind, TaskType
from loopml.core.errors import InvalidInput
from loopml.core.schemas import ColumnSchema, DatasetSchema
from loopml.data.stats import summarise

_SAMPLE = 10_000
_TARGET_NAMES = (
    "target", "label", "labels", "class", "y", "outcome", "species", "churn", "survived",
    "default", "fraud", "diagnosis", "quality", "price", "response",
)  # fmt: skip
_ID_NAME = re.compile(r"(^|_)(id|uuid|guid|key|index|idx)$|^(id|uuid)_", re.IGNORECASE)
_MAX_CLASSES = 10
_NOT_TARGETS = (ColumnKind.identifier, ColumnKind.text, ColumnKind.image, ColumnKind.datetime)


def infer_schema(
    table: pa.Table,
    *,
    image_columns: tuple[str, ...] = (),
    kinds: Mapping[str, str] | None = None,
    target: str | None = None,
    task: str | None = None,
    summaries: Mapping[str, dict[str, Any]] | None = None,
) -> DatasetSchema:
    """Infer each column's kind, a target and a task; apply the user's overrides.

    Parameters
    ----------
    table : pyarrow.Table
        The version's rows.
    image_columns : tuple of str
        Columns that hold image hashes.
    kinds : mapping, optional
        Column name -> :class:`ColumnKind` value, replacing what inference says.
    target, task : str, optional
        The target column and task type, replacing the suggestions.
    summaries : mapping, optional
        :func:`loopml.data.stats.summarise` of each column, when already computed.
    """
    kinds = dict(kinds or {})
    _check_columns(table, kinds, "kinds")
    columns = []
    for name in table.column_names:
        column = table.column(name)
        summary = (summaries or {}).get(name) or summarise(column)
        inferred = ColumnKind.image if name in image_columns else infer_kind(name, column, summary)
        kind = inferred
        if name in kinds:
            kind = _parse_kind(kinds[name], name)
            _check_override(name, column, kind)
        columns.append(
            ColumnSchema(
                name=name,
                kind=kind,
                dtype=str(column.type),
                missing=summary["missing"],
                unique=summary["unique"],
                unique_estimated=summary.get("unique_estimated", False),
                inferred=inferred if kind != inferred else None,
            )
        )
    schema = DatasetSchema(columns=columns)
    suggested = suggest_target(schema)
    suggested_task = infer_task(schema, suggested) if suggested else None
    if target is not None:
        _check_columns(table, {target: ""}, "target")
        _check_target(schema, target)
    chosen = target or suggested
    chosen_task = _parse_task(task) if task else (infer_task(schema, chosen) if chosen else None)
    if chosen and chosen_task:
        _check_task(schema, chosen, chosen_task)
    return schema.model_copy(
        update={
            "target": chosen,
            "task": chosen_task,
            "suggested_target": suggested,
            "suggested_task": suggested_task,
        }
    )


def infer_kind(
    name: str, column: pa.ChunkedArray, summary: dict[str, Any] | None = None
) -> ColumnKind:
    """The kind of one column, from its type, its counts and a sample of its values."""
    summary = summary or summarise(column)
    kind_of = column.type
    if pa.types.is_boolean(kind_of):
        return ColumnKind.boolean
    if pa.types.is_temporal(kind_of):
        return ColumnKind.datetime
    valid = summary["rows"] - summary["missing"]
    unique = summary["unique"]
    if pa.types.is_integer(kind_of):
        named_target = name.lower() in _TARGET_NAMES
        if (
            unique == valid
            and valid >= 20
            and not named_target
            and (_ID_NAME.search(name) or _increasing(column))
        ):
            return ColumnKind.identifier
        return ColumnKind.integer
    if pa.types.is_floating(kind_of) or pa.types.is_decimal(kind_of):
        return ColumnKind.numeric
    if not (pa.types.is_string(kind_of) or pa.types.is_large_string(kind_of)):
        return ColumnKind.categorical
    sample = _sample(column)
    if sample.empty:
        return ColumnKind.categorical
    if _share(pd.to_numeric(sample, errors="coerce").notna()) >= 0.98:
        return ColumnKind.numeric
    if _looks_like_dates(sample):
        return ColumnKind.datetime
    lengths = sample.str.len()
    words = sample.str.count(r"\s+") + 1
    if valid >= 20 and unique == valid and lengths.mean() < 40 and words.max() == 1:
        return ColumnKind.identifier
    if words.mean() >= 4 or (unique > 0.5 * valid and lengths.mean() > 30):
        return ColumnKind.text
    return ColumnKind.categorical


def suggest_target(schema: DatasetSchema) -> str | None:
    """A column named like a target, else the last column that can be one."""
    usable = [c for c in schema.columns if c.kind not in _NOT_TARGETS and (c.unique or 0) > 1]
    for wanted in _TARGET_NAMES:
        for column in usable:
            if column.name.lower() == wanted:
                return column.name
    return usable[-1].name if usable and usable[-1] is schema.columns[-1] else None


def infer_task(schema: DatasetSchema, target: str) -> TaskType | None:
    column = schema.column(target)
    if column is None or column.kind in _NOT_TARGETS:
        return None
    unique = column.unique or 0
    if unique == 2 or column.kind is ColumnKind.boolean:
        return TaskType.binary
    if column.kind is ColumnKind.numeric:
        return TaskType.regression
    if column.kind is ColumnKind.integer and unique > _MAX_CLASSES:
        return TaskType.regression
    return TaskType.multiclass if unique > 2 else None


def _sample(column: pa.ChunkedArray) -> pd.Series:
    # Rows are picked before the gaps go (no copy of the rest), as many as hold about
    # ``_SAMPLE`` values.
    valid = len(column) - column.null_count
    values = _spaced(column, math.ceil(_SAMPLE * len(column) / max(valid, 1))).drop_null()
    return pd.Series(values.to_pylist(), dtype=object).astype(str).str.strip()


def _spaced(values: pa.ChunkedArray, size: int) -> pa.ChunkedArray:
    """About ``size`` evenly spaced values (all of a shorter column)."""
    if len(values) <= size:
        return values
    step = len(values) // size
    return values.take(pa.array(np.arange(0, len(values), step)[:size]))


def _share(mask: pd.Series) -> float:
    return float(mask.mean()) if len(mask) else 0.0


def _looks_like_dates(sample: pd.Series) -> bool:
    if not sample.str.contains(r"\d", regex=True).all() or sample.str.len().max() > 40:
        return False
    for fmt in ("ISO8601", "mixed"):
        try:
            parsed = pd.to_datetime(sample, errors="coerce", format=fmt)
        except (ValueError, TypeError):
            continue
        if _share(parsed.notna()) >= 0.95:
            return True
    return False


def _increasing(column: pa.ChunkedArray) -> bool:
    values = column.drop_null().to_numpy()
    return len(values) > 1 and bool(np.all(np.diff(values) > 0))


def _check_columns(table: pa.Table, names: Mapping[str, Any], field: str) -> None:
    unknown = [n for n in names if n not in table.column_names]
    if unknown:
        raise InvalidInput(
            f"no column named {', '.join(map(repr, unknown))}; the columns are: "
            f"{', '.join(table.column_names)}",
            field=field,
        )


def _parse_kind(value: str, column: str) -> ColumnKind:
    try:
        return ColumnKind(value)
    except ValueError:
        allowed = ", ".join(k.value for k in ColumnKind)
        raise InvalidInput(
            f"column {column!r}: unknown kind {value!r}; choose one of {allowed}", field="kinds"
        ) from None


def _parse_task(value: str) -> TaskType:
    try:
        return TaskType(value)
    except ValueError:
        allowed = ", ".join(t.value for t in TaskType)
        raise InvalidInput(
            f"unknown task {value!r}; choose one of {allowed}", field="task"
        ) from None


def _check_override(name: str, column: pa.ChunkedArray, kind: ColumnKind) -> None:
    numeric = (
        pa.types.is_integer(column.type)
        or pa.types.is_floating(column.type)
        or pa.types.is_boolean(column.type)  # true and false as 1 and 0
    )
    if kind in (ColumnKind.numeric, ColumnKind.integer) and not numeric:
        sample = _sample(column)
        bad = sample[pd.to_numeric(sample, errors="coerce").isna()]
        if len(bad):
            raise InvalidInput(
                f"column {name!r} cannot be {kind.value}: it holds {bad.iloc[0]!r}", field="kinds"
            )
    if kind is ColumnKind.image:
        raise InvalidInput(
            f"column {name!r}: image columns come from image folders and archives", field="kinds"
        )


def _check_target(schema: DatasetSchema, target: str) -> None:
    column = schema.column(target)
    if column is not None and column.kind in _NOT_TARGETS:
        raise InvalidInput(
            f"column {target!r} is {column.kind.value}; a target must be numeric, integer, "
            "boolean or categorical (override its kind if inference got it wrong)",
            field="target",
        )


def _check_task(schema: DatasetSchema, target: str, task: TaskType) -> None:
    column = schema.column(target)
    assert column is not None
    unique = column.unique or 0
    if task is TaskType.regression and column.kind not in (ColumnKind.numeric, ColumnKind.integer):
        raise InvalidInput(
            f"regression needs a numeric target; {target!r} is {column.kind.value}", field="task"
        )
    if task is TaskType.binary and unique != 2:
        raise InvalidInput(
            f"binary classification needs exactly 2 classes; {target!r} has {unique}",
            field="task",
        )
    if task is not TaskType.regression and unique < 2:
        raise InvalidInput(f"target {target!r} has fewer than 2 classes", field="task")
