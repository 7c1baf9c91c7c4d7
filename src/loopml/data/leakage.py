"""Target leakage: a column that alone predicts the target almost perfectly.

Checked on a fixed sample of rows: numbers in quantile bins, other values as they are;
a column whose groups give the target with accuracy (or R²) of 0.98 or more is named.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from loopml.core.enums import ColumnKind, Severity, TaskType
from loopml.core.schemas import DatasetSchema, QualityFinding

_SAMPLE = 50_000
_NUMERIC = (ColumnKind.numeric, ColumnKind.integer)
_BINS = 32


def leakage(table: pa.Table, schema: DatasetSchema, seed: int = 0) -> list[QualityFinding]:
    """Findings for the columns that give away ``schema.target`` on a sample of rows."""
    target = schema.target
    if target is None:
        return []
    rows = _sample_rows(table, seed)
    rows = rows.filter(pc.is_valid(rows.column(target)))
    if rows.num_rows < 20:
        return []
    classify = schema.task is not TaskType.regression
    y = _codes(rows.column(target)) if classify else _numbers(rows.column(target))
    findings = []
    for column in schema.columns:
        if column.name == target or column.kind in (
            ColumnKind.identifier, ColumnKind.image, ColumnKind.text
        ):  # fmt: skip
            continue
        groups = _groups(rows.column(column.name), column.kind)
        if groups is None:
            continue
        score = _purity(groups, y) if classify else _explained(groups, y)
        if score >= 0.98:
            what = "accuracy" if classify else "R²"
            findings.append(
                QualityFinding(
                    check="target_leakage",
                    severity=Severity.warning,
                    column=column.name,
                    message=(
                        f"{column.name!r} alone predicts {target!r} with {what} {score:.3f}: "
                        "if it is not known when a prediction is made (or is derived from the "
                        "target), drop it, or the model will fail in production"
                    ),
                    details={"score": score},
                )
            )
    return findings


def _sample_rows(table: pa.Table, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    size = min(table.num_rows, _SAMPLE)
    index = np.sort(rng.choice(table.num_rows, size, replace=False))
    return table.take(pa.array(index))


def _numbers(values: pa.ChunkedArray) -> np.ndarray:
    """Floats, NaN where missing; text that holds numbers is read as pandas reads it."""
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        filled = pc.fill_null(values.combine_chunks().cast(pa.float64(), safe=False), np.nan)
        return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=float)
    return np.asarray(pd.to_numeric(values.to_pandas(), errors="coerce"), dtype=float)


def _codes(values: pa.ChunkedArray) -> np.ndarray:
    """A code per row for its value, in order of first appearance (missing is a value)."""
    encoded = pc.dictionary_encode(values.combine_chunks(), null_encoding="encode")
    return np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)


def _groups(values: pa.ChunkedArray, kind: ColumnKind) -> np.ndarray | None:
    """Group codes: quantile bins of numbers, the values of everything else."""
    if kind in _NUMERIC:
        numbers = _numbers(values)
        if np.isnan(numbers).all():
            return None
        edges = np.unique(np.nanquantile(numbers, np.linspace(0, 1, _BINS + 1)[1:-1]))
        codes = np.searchsorted(edges, numbers, side="right")
        return np.where(np.isnan(numbers), len(edges) + 1, codes)
    codes = _codes(values)
    if codes.max(initial=0) + 1 > len(values) / 10:
        return None  # nearly one group per row: any column would "predict" perfectly
    return codes


def _purity(groups: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of predicting each group's most common class (0 when one class dominates)."""
    classes = int(y.max()) + 1
    table = np.bincount(groups * classes + y, minlength=(groups.max() + 1) * classes)
    table = table.reshape(-1, classes)
    if table.sum(axis=0).max() >= 0.95 * len(y):
        return 0.0
    return float(table.max(axis=1).sum() / len(y))


def _explained(groups: np.ndarray, y: np.ndarray) -> float:
    """R² of predicting each group's mean."""
    keep = np.isfinite(y)
    groups, y = groups[keep], y[keep]
    total = float(((y - y.mean()) ** 2).sum())
    if total == 0 or len(y) == 0:
        return 0.0
    sums = np.bincount(groups, weights=y)
    counts = np.bincount(groups)
    means = sums[groups] / counts[groups]
    return 1.0 - float(((y - means) ** 2).sum()) / total
