"""The quality report of a dataset version: checks a person should see before training.

Each finding has a severity and a message that says what was found and what to do.
Checks that need only counts run on every row; those that compare values (leakage,
near-duplicate categories) run on a fixed sample so that the report stays fast.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from loopml.core.enums import ColumnKind, Severity, TaskType
from loopml.core.schemas import DatasetSchema, QualityFinding

_SAMPLE = 50_000
_NUMERIC = (ColumnKind.numeric, ColumnKind.integer)
_BINS = 32
_FENCE = 3.0  # IQR multiples: Tukey's "far out" values
_ROBUST_Z = 5.0
_NORMALISE = re.compile(r"[\s_\-.]+")


def quality_report(table: pa.Table, schema: DatasetSchema, seed: int = 0) -> list[QualityFinding]:
    """Run every check; findings sorted most severe first."""
    n = table.num_rows
    findings: list[QualityFinding] = []
    for column in schema.columns:
        values = table.column(column.name)
        findings += _missing(column.name, column.missing, n)
        if column.kind is ColumnKind.image:
            continue
        findings += _constant(column.name, values, column.unique or 0, n)
        if column.kind is ColumnKind.identifier:
            findings.append(
                _find(
                    "identifier",
                    Severity.info,
                    column.name,
                    f"{column.name!r} looks like an identifier (a different value on almost "
                    "every row): training ignores it; if rows sharing it are related, split "
                    "by it (grouped split) so related rows never sit on both sides",
                )
            )
        if column.kind in _NUMERIC and column.name != schema.target:
            findings += _outliers(column.name, values)
        if column.kind in (ColumnKind.categorical, ColumnKind.text, ColumnKind.numeric):
            findings += _mixed(column.name, values)
        if column.kind is ColumnKind.categorical:
            findings += _near_duplicates(column.name, values)
    findings += _duplicates(table, schema)
    if schema.target is not None and schema.task is not None:
        rows = _sample_rows(table, seed)
        findings += _imbalance(schema.target, table.column(schema.target), schema.task)
        findings += _leakage(rows, schema)
    order = {Severity.error: 0, Severity.warning: 1, Severity.info: 2}
    return sorted(findings, key=lambda f: order[f.severity])


def _find(
    check: str, severity: Severity, column: str | None, message: str, **details: Any
) -> QualityFinding:
    return QualityFinding(
        check=check, severity=severity, column=column, message=message, details=details
    )


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / max(whole, 1):.1f}%"


def _missing(name: str, missing: int, n: int) -> list[QualityFinding]:
    if missing == 0:
        return []
    if missing == n:
        return [
            _find("missing", Severity.error, name, f"{name!r} is empty on every row: drop it or "
                  "fix the export that produced it", missing=missing, share=1.0)
        ]  # fmt: skip
    severity = Severity.warning if missing >= 0.3 * n else Severity.info
    return [
        _find(
            "missing",
            severity,
            name,
            f"{name!r} is missing on {missing:,} rows ({_pct(missing, n)}); models impute it, "
            "but check whether 'missing' means something (then say so in a column of its own)",
            missing=missing,
            share=missing / n,
        )
    ]


def _constant(name: str, values: pa.ChunkedArray, unique: int, n: int) -> list[QualityFinding]:
    if unique <= 1:
        return [
            _find("constant", Severity.warning, name, f"{name!r} holds a single value: it "
                  "carries no information and training ignores it", unique=unique)
        ]  # fmt: skip
    counts = pc.value_counts(values.drop_null())
    top = max(counts.field("counts").to_pylist())
    if top >= 0.99 * n:
        value = counts.field("values")[int(np.argmax(counts.field("counts")))].as_py()
        return [
            _find(
                "near_constant",
                Severity.info,
                name,
                f"{name!r} is {value!r} on {_pct(top, n)} of rows: little to learn from it "
                "unless the rare values matter",
                value=value,
                share=top / n,
            )
        ]
    return []


def _outliers(name: str, values: pa.ChunkedArray) -> list[QualityFinding]:
    x = values.to_numpy().astype(float, copy=False)
    x = x[np.isfinite(x)]
    if len(x) < 20 or len(np.unique(x[: min(len(x), 1000)])) <= 10:
        return []
    q1, median, q3 = np.percentile(x, [25, 50, 75])
    mad = 1.4826 * np.median(np.abs(x - median))
    iqr = q3 - q1
    if iqr <= 0 and mad <= 0:
        return []
    low, high = q1 - _FENCE * iqr, q3 + _FENCE * iqr
    outside = (x < low) | (x > high) if iqr > 0 else np.zeros(len(x), bool)
    if mad > 0:
        outside &= np.abs(x - median) / mad > _ROBUST_Z
    count = int(outside.sum())
    if count == 0:
        return []
    far = x[outside]
    values, counts = np.unique(far, return_counts=True)
    sentinel = float(values[np.argmax(counts)]) if counts.max() >= max(3, count / 2) else None
    # Skewed columns have far values by nature; a repeated far value is a placeholder.
    severity = Severity.warning if sentinel is not None or count > 0.05 * len(x) else Severity.info
    extremes = (float(x.min()), float(x.max()))
    hint = (
        f"{sentinel:g} alone appears {int(counts.max()):,} times: a placeholder for "
        "'unknown'? If so, make those cells empty"
        if sentinel is not None
        else "check for unit mix-ups and placeholder values such as -1 or 9999"
    )
    return [
        _find(
            "outliers",
            severity,
            name,
            f"{name!r} has {count:,} far values ({_pct(count, len(x))}) outside "
            f"[{low:.4g}, {high:.4g}] (range {extremes[0]:.4g} .. {extremes[1]:.4g}); {hint}",
            sentinel=sentinel,
            count=count,
            lower=float(low),
            upper=float(high),
            min=extremes[0],
            max=extremes[1],
        )
    ]


def _mixed(name: str, values: pa.ChunkedArray) -> list[QualityFinding]:
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        return []
    sample = pd.Series(values.drop_null().slice(0, _SAMPLE).to_pylist(), dtype=object)
    if sample.empty:
        return []
    numeric = pd.to_numeric(sample.str.strip(), errors="coerce").notna()
    share = float(numeric.mean())
    if not 0.05 <= share < 1.0:
        return []
    text = sample[~numeric].unique()[:3].tolist()
    numbers = sample[numeric].unique()[:2].tolist()
    return [
        _find(
            "mixed_types",
            Severity.warning,
            name,
            f"{name!r} mixes numbers ({', '.join(map(repr, numbers))}) with text "
            f"({', '.join(map(repr, text))}): {_pct(1 - share, 1)} of values are not numbers; "
            "if those mean 'missing', re-export them as empty cells",
            numeric_share=share,
            text_examples=text,
        )
    ]


def _near_duplicates(name: str, values: pa.ChunkedArray) -> list[QualityFinding]:
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        return []
    distinct = pc.unique(values.drop_null()).to_pylist()
    if len(distinct) > 10_000:
        return []
    groups: dict[str, list[str]] = defaultdict(list)
    for value in distinct:
        groups[_NORMALISE.sub(" ", value).strip().casefold()].append(value)
    clashes = [sorted(g) for g in groups.values() if len(g) > 1]
    if not clashes:
        return []
    shown = "; ".join(" / ".join(repr(v) for v in g) for g in clashes[:5])
    return [
        _find(
            "near_duplicate_values",
            Severity.warning,
            name,
            f"{name!r} spells the same value in different ways ({shown}): they count as "
            "different categories until they are made the same",
            groups=clashes[:20],
        )
    ]


def _duplicates(table: pa.Table, schema: DatasetSchema) -> list[QualityFinding]:
    n = table.num_rows
    hashed = np.zeros(n, dtype=np.uint64)
    for column in schema.columns:
        values = table.column(column.name).to_pandas()
        with np.errstate(over="ignore"):
            hashed = hashed * np.uint64(1_000_003) ^ pd.util.hash_array(
                np.asarray(values, dtype=object) if values.dtype == object else values.to_numpy()
            )
    duplicates = n - len(np.unique(hashed))
    if duplicates == 0:
        return []
    return [
        _find(
            "duplicate_rows",
            Severity.warning,
            None,
            f"{duplicates:,} row{'s' if duplicates > 1 else ''} ({_pct(duplicates, n)}) repeat "
            "another row exactly: copies "
            "in different folds make cross-validation look better than it is",
            count=duplicates,
        )
    ]


def _imbalance(target: str, values: pa.ChunkedArray, task: TaskType) -> list[QualityFinding]:
    if task is TaskType.regression:
        return []
    counts = pc.value_counts(values.drop_null())
    sizes = dict(
        zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=False)
    )
    total = sum(sizes.values())
    rare, smallest = min(sizes.items(), key=lambda kv: kv[1])
    if smallest < 10:
        severity = Severity.error
        advice = "too few to learn or evaluate: label more of them or merge the class"
    elif smallest < 0.1 * total:
        severity = Severity.warning
        advice = "prefer roc_auc, log_loss or balanced_accuracy to accuracy, or set a cost matrix"
    else:
        return []
    return [
        _find(
            "class_imbalance",
            severity,
            target,
            f"class {rare!r} of {target!r} has {smallest:,} rows ({_pct(smallest, total)}); "
            + advice,
            classes={str(k): v for k, v in sizes.items()},
        )
    ]


def _sample_rows(table: pa.Table, seed: int) -> pd.DataFrame:
    if table.num_rows > _SAMPLE:
        rng = np.random.default_rng(seed)
        index = np.sort(rng.choice(table.num_rows, _SAMPLE, replace=False))
        table = table.take(pa.array(index))
    return table.to_pandas()


def _leakage(rows: pd.DataFrame, schema: DatasetSchema) -> list[QualityFinding]:
    target = schema.target
    assert target is not None
    rows = rows[rows[target].notna()]
    if len(rows) < 20:
        return []
    y = rows[target]
    classify = schema.task is not TaskType.regression
    findings = []
    for column in schema.columns:
        if column.name == target or column.kind in (
            ColumnKind.identifier, ColumnKind.image, ColumnKind.text
        ):  # fmt: skip
            continue
        groups = _groups(rows[column.name], column.kind)
        if groups is None:
            continue
        score = _purity(groups, y) if classify else _explained(groups, y.astype(float))
        if score >= 0.98:
            what = "accuracy" if classify else "R²"
            findings.append(
                _find(
                    "target_leakage",
                    Severity.warning,
                    column.name,
                    f"{column.name!r} alone predicts {target!r} with {what} {score:.3f}: if it "
                    "is not known when a prediction is made (or is derived from the target), "
                    "drop it, or the model will fail in production",
                    score=score,
                )
            )
    return findings


def _groups(values: pd.Series, kind: ColumnKind) -> pd.Series | None:
    if kind in _NUMERIC:
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.nunique() <= _BINS:
            return numbers.astype(str)
        return pd.qcut(numbers, _BINS, labels=False, duplicates="drop").astype(str)
    if values.nunique() > len(values) / 10:
        return None  # nearly one group per row: any column would "predict" perfectly
    return values.astype(str)


def _purity(groups: pd.Series, y: pd.Series) -> float:
    counts = pd.crosstab(groups, y.astype(str))
    base = counts.sum(axis=0).max() / len(y)
    accuracy = counts.max(axis=1).sum() / len(y)
    return float(accuracy) if base < 0.95 else 0.0


def _explained(groups: pd.Series, y: pd.Series) -> float:
    total = float(((y - y.mean()) ** 2).sum())
    if total == 0:
        return 0.0
    means = y.groupby(groups).transform("mean")
    return 1.0 - float(((y - means) ** 2).sum()) / total
