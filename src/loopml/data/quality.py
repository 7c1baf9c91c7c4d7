"""The quality report of a dataset version: checks a person should see before training.

Each finding has a severity and a message that says what was found and what to do.
Checks that need only counts run on every row; those that compare values (leakage,
near-duplicate categories) run on a fixed sample so that the report stays fast.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopml.core.enums import ColumnKind, Severity, TaskType
from loopml.core.schemas import DatasetSchema, QualityFinding
from loopml.data.findings import finding, pct
from loopml.data.leakage import leakage
from loopml.data.stats import summarise
from loopml.data.text_checks import line_breaks, mixed, near_duplicates

_NUMERIC = (ColumnKind.numeric, ColumnKind.integer)
_MAX_DISTINCT = 10_000


def quality_report(
    table: pa.Table,
    schema: DatasetSchema,
    seed: int = 0,
    *,
    summaries: dict[str, dict[str, Any]] | None = None,
    duplicates: list[QualityFinding] | None = None,
) -> list[QualityFinding]:
    """Run every check; findings sorted most severe first.

    ``summaries`` are :func:`loopml.data.stats.summarise` of each column and
    ``duplicates`` is :func:`duplicate_rows` of the table, when already made.
    """
    summaries = summaries or {c.name: summarise(table.column(c.name)) for c in schema.columns}
    target = schema.target if schema.task is not None else None
    findings: list[QualityFinding] = []
    with ThreadPoolExecutor(2) as pool:
        # Hashing rows and the leakage sample are Arrow and numpy work that lets go of the
        # GIL: they run beside the column checks.
        repeated = pool.submit(duplicate_rows, table) if duplicates is None else None
        leaks = pool.submit(leakage, table, schema, seed) if target is not None else None
        findings += _column_checks(table, schema, summaries)
        findings += repeated.result() if repeated is not None else duplicates or []
        if target is not None and schema.task is not None and leaks is not None:
            findings += _imbalance(target, table.column(target), summaries[target], schema.task)
            findings += leaks.result()
    order = {Severity.error: 0, Severity.warning: 1, Severity.info: 2}
    return sorted(findings, key=lambda f: order[f.severity])


def _column_checks(
    table: pa.Table, schema: DatasetSchema, summaries: dict[str, dict[str, Any]]
) -> list[QualityFinding]:
    n = table.num_rows
    findings: list[QualityFinding] = []
    for column in schema.columns:
        values = table.column(column.name)
        summary = summaries[column.name]
        if column.name == schema.target:
            findings += _unlabelled(column.name, summary["missing"], n)
            if summary["unique"] == 0:
                continue
        else:
            findings += _missing(column.name, summary["missing"], n)
        if column.kind is ColumnKind.image:
            continue
        findings += _constant(column.name, summary, n)
        if column.kind is ColumnKind.identifier:
            findings.append(
                finding(
                    "identifier",
                    Severity.info,
                    column.name,
                    f"{column.name!r} looks like an identifier (a different value on almost "
                    "every row): training ignores it; if rows sharing it are related, split "
                    "by it (grouped split) so related rows never sit on both sides",
                )
            )
        if column.kind in _NUMERIC and column.name != schema.target:
            findings += _outliers(column.name, summary)
        if column.kind in (ColumnKind.categorical, ColumnKind.text, ColumnKind.numeric):
            findings += mixed(column.name, values)
        findings += line_breaks(column.name, values)
        if column.kind is ColumnKind.categorical and summary["unique"] <= _MAX_DISTINCT:
            findings += near_duplicates(column.name, values)
    return findings


def _missing(name: str, missing: int, n: int) -> list[QualityFinding]:
    if missing == 0:
        return []
    if missing == n:
        return [
            finding("missing", Severity.error, name, f"{name!r} is empty on every row: drop it or "
                  "fix the export that produced it", missing=missing, share=1.0)
        ]  # fmt: skip
    severity = Severity.warning if missing >= 0.3 * n else Severity.info
    return [
        finding(
            "missing",
            severity,
            name,
            f"{name!r} is missing on {missing:,} rows ({pct(missing, n)}); models impute it, "
            "but check whether 'missing' means something (then say so in a column of its own)",
            missing=missing,
            share=missing / n,
        )
    ]


def _unlabelled(name: str, missing: int, n: int) -> list[QualityFinding]:
    if missing == 0:
        return []
    severity = Severity.warning if missing == n else Severity.info
    return [
        finding(
            "unlabelled",
            severity,
            name,
            f"{missing:,} rows ({pct(missing, n)}) have no {name!r}: training leaves them "
            "out; label them (loopml data labels items --unlabelled, then add or import)",
            missing=missing,
            share=missing / n,
        )
    ]


def _constant(name: str, summary: dict[str, Any], n: int) -> list[QualityFinding]:
    if summary["unique"] <= 1:
        return [
            finding("constant", Severity.warning, name, f"{name!r} holds a single value: it "
                  "carries no information and training ignores it", unique=summary["unique"])
        ]  # fmt: skip
    top = summary["top"][0] if summary["top"] else {"count": 0}  # no value repeats
    if top["count"] >= 0.99 * n:
        return [
            finding(
                "near_constant",
                Severity.info,
                name,
                f"{name!r} is {top['value']!r} on {pct(top['count'], n)} of rows: little to "
                "learn from it unless the rare values matter",
                value=top["value"],
                share=top["count"] / n,
            )
        ]
    return []


def _outliers(name: str, summary: dict[str, Any]) -> list[QualityFinding]:
    far = summary.get("far") or {}
    count = far.get("count", 0)
    if count == 0:
        return []
    valid = summary["rows"] - summary["missing"]
    repeated = far["most_common_count"]
    sentinel = far["most_common"] if repeated >= max(3, count / 2) else None
    # Skewed columns have far values by nature; a repeated far value is a placeholder.
    severity = Severity.warning if sentinel is not None or count > 0.05 * valid else Severity.info
    hint = (
        f"{sentinel:g} alone appears {repeated:,} times: a placeholder for 'unknown'? "
        "If so, make those cells empty"
        if sentinel is not None
        else "check for unit mix-ups and placeholder values such as -1 or 9999"
    )
    return [
        finding(
            "outliers",
            severity,
            name,
            f"{name!r} has {count:,} far values ({pct(count, valid)}) outside "
            f"[{far['lower']:.4g}, {far['upper']:.4g}] (range {summary['min']:.4g} .. "
            f"{summary['max']:.4g}); {hint}",
            sentinel=sentinel,
            count=count,
            lower=far["lower"],
            upper=far["upper"],
        )
    ]


def duplicate_rows(table: pa.Table) -> list[QualityFinding]:
    """The finding that rows repeat other rows exactly, if any do."""
    n = table.num_rows
    scratch = np.empty(n, dtype=np.float64)  # reused by every column: no page faults
    candidates = table
    if table.num_columns > _KEY_COLUMNS:
        # Rows that differ in a few columns likely to hold many values (floats first)
        # cannot repeat each other: only rows that share those are compared whole.
        kinds = [_key_rank(f.type) for f in table.schema]
        key = sorted(range(table.num_columns), key=lambda i: kinds[i])[:_KEY_COLUMNS]
        shared = _shared(_hash_rows([table.column(i) for i in key], scratch))
        if shared is not None:
            candidates = table.filter(pa.array(shared))
    hashed = _hash_rows(candidates.columns, scratch[: candidates.num_rows])
    hashed.sort()  # sorting beats a hash table on a million 64-bit codes
    duplicates = int(np.count_nonzero(hashed[1:] == hashed[:-1]))
    if duplicates == 0:
        return []
    return [
        finding(
            "duplicate_rows",
            Severity.warning,
            None,
            f"{duplicates:,} row{'s' if duplicates > 1 else ''} ({pct(duplicates, n)}) "
            f"repeat{'' if duplicates > 1 else 's'} another row exactly: copies in "
            "different folds make cross-validation look better than it is",
            count=duplicates,
        )
    ]


_MISSING_CODE = np.uint64(0x7FF8_DEAD_BEEF_0001)  # one code for a missing value of any type
_KEY_COLUMNS = 4


def _key_rank(kind: pa.DataType) -> int:
    """Columns likeliest to tell rows apart first: floats, integers, times, then the rest."""
    if pa.types.is_floating(kind):
        return 0
    if pa.types.is_integer(kind):
        return 1
    return 2 if pa.types.is_temporal(kind) else 3


def _hash_rows(columns: list[pa.ChunkedArray], scratch: np.ndarray) -> np.ndarray:
    """A 64-bit code per row, equal for rows equal in ``columns``."""
    hashed = np.zeros(len(scratch), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for values in columns:
            hashed *= np.uint64(1_000_003)
            hashed ^= _row_codes(values, scratch)
    return hashed


def _shared(codes: np.ndarray) -> np.ndarray | None:
    """Which rows share their code with another row, or None when too many do for
    comparing only those to pay."""
    ordered = np.sort(codes)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if len(repeated) > len(codes) // 8:
        return None
    return np.isin(codes, np.unique(repeated))


def _row_codes(values: pa.ChunkedArray, scratch: np.ndarray) -> np.ndarray:
    """Per row, a 64-bit code equal for equal values (missing values share one code);
    numbers are coded in ``scratch``, an array of the column's length."""
    if pa.types.is_floating(values.type):
        at = 0
        for chunk in values.chunks:  # into ``scratch`` chunk by chunk: no fresh copies
            part = chunk.to_numpy(zero_copy_only=False)  # NaN where missing
            np.add(part, 0.0, out=scratch[at : at + len(part)])  # makes -0.0 equal to 0.0
            at += len(part)
        codes = scratch.view(np.uint64)
        missing = np.isnan(scratch)
        if missing.any():
            codes[missing] = _MISSING_CODE
        return codes
    # One array first: Arrow's kernels cost about 0.2 ms a chunk, a reader makes dozens.
    array = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if pa.types.is_integer(array.type):  # every digit counts, beyond 2**53 too
        codes = scratch.view(np.uint64)
        filled = pc.fill_null(array.cast(pa.uint64(), safe=False), 0)
        codes[:] = filled.to_numpy(zero_copy_only=False)
        if array.null_count:
            codes[np.asarray(array.is_null().to_numpy(zero_copy_only=False))] = _MISSING_CODE
        return codes
    indices = pc.dictionary_encode(array).indices
    codes = np.asarray(indices.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    return codes.view(np.uint64) + np.uint64(0x9E3779B97F4A7C15)


def _imbalance(
    target: str, values: pa.ChunkedArray, summary: dict[str, Any], task: TaskType
) -> list[QualityFinding]:
    if task is TaskType.regression or not summary["top"]:
        return []
    if summary["unique"] > len(summary["top"]):
        counts = pc.value_counts(values.drop_null())
        sizes = dict(
            zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
        )
    else:
        sizes = {t["value"]: t["count"] for t in summary["top"]}
    total = summary["rows"] - summary["missing"]
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
        finding(
            "class_imbalance",
            severity,
            target,
            f"class {rare!r} of {target!r} has {smallest:,} rows ({pct(smallest, total)}); "
            + advice,
            classes={str(k): v for k, v in sizes.items()},
        )
    ]
