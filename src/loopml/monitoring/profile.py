"""Profiles: one mergeable sketch per column of a frame.

A reference profile fixes each column's kind, bins and vocabulary; a window's profile is
made against it, so windows of any length are merges of small per-segment profiles.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from loopml.core.errors import InvalidInput
from loopml.monitoring.sketch import (
    CAPACITY,
    CategorySketch,
    NumericSketch,
    Sketch,
    sketch_from_dict,
)

FORMAT = 1
# What serving takes as a missing number: blank text, and text Python reads as NaN.
_BLANK = frozenset({"", "nan", "+nan", "-nan"})
PARALLEL_ROWS = 100_000  # below this, starting threads costs more than they save


@dataclass
class Profile:
    """Sketches of a frame's columns.

    Attributes
    ----------
    rows : int
        Rows profiled.
    columns : dict of str to sketch
        One sketch per profiled column.
    ignored : dict of str to str
        Columns not profiled, with the reason (images, nested values).
    extra : list of str
        Columns of a window that its reference does not have.
    outputs : dict of str to sketch
        What the model answered, sketched like columns: ``prediction`` (label or value)
        and ``confidence``.
    metrics : dict of str to float
        A reference's quality on rows it had not seen (out-of-fold): ``accuracy`` and
        ``f1_macro``, or ``mae`` and ``rmse``.
    """

    rows: int = 0
    columns: dict[str, Sketch] = field(default_factory=dict)
    ignored: dict[str, str] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)
    outputs: dict[str, Sketch] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # a reference's, at training

    def merge(self, other: Profile) -> Profile:
        """The profile of both frames together (both made against one reference)."""
        return Profile(
            self.rows + other.rows,
            _merged(self.columns, other.columns),
            {**self.ignored, **other.ignored},
            sorted(set(self.extra) | set(other.extra)),
            _merged(self.outputs, other.outputs),
            {**other.metrics, **self.metrics},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "rows": self.rows,
            "columns": {name: sketch.to_dict() for name, sketch in self.columns.items()},
            "ignored": self.ignored,
            "extra": self.extra,
            "outputs": {name: sketch.to_dict() for name, sketch in self.outputs.items()},
            "metrics": self.metrics,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        if data.get("format") != FORMAT:
            raise InvalidInput(
                f"profile format {data.get('format')!r} is not one this loopml reads ({FORMAT})",
                field="profile",
            )
        return cls(
            int(data["rows"]),
            {name: sketch_from_dict(s) for name, s in data["columns"].items()},
            dict(data.get("ignored", {})),
            list(data.get("extra", [])),
            {name: sketch_from_dict(s) for name, s in data.get("outputs", {}).items()},
            {str(k): float(v) for k, v in data.get("metrics", {}).items()},
        )


def _merged(mine: dict[str, Sketch], theirs: dict[str, Sketch]) -> dict[str, Sketch]:
    out = dict(mine)
    for name, sketch in theirs.items():
        have = out.get(name)
        out[name] = sketch if have is None else have.merge(sketch)  # type: ignore[arg-type]
    return out


def profile(
    frame: pd.DataFrame | pa.Table,
    reference: Profile | None = None,
    columns: Iterable[str] | None = None,
    outputs: pd.DataFrame | pa.Table | None = None,
) -> Profile:
    """Profile a frame.

    Parameters
    ----------
    frame : DataFrame or pyarrow.Table
        The rows.
    reference : Profile, optional
        Without it, the result is a reference profile (its own bins and vocabularies).
        With it, the frame's columns are sketched as the reference's are: numbers in its
        bins (values that are not numbers count as invalid), categories against its
        vocabulary; columns it lacks are listed in ``extra``.
    columns : iterable of str, optional
        Only these columns (default: all).
    outputs : DataFrame or pyarrow.Table, optional
        The model's answers for the same rows (``prediction``, ``confidence`` ...),
        profiled into ``outputs``.
    """
    table = as_table(frame)
    names = list(columns) if columns is not None else table.column_names
    if reference is not None and columns is None:  # and what the rows lack: missing
        names += [name for name in reference.columns if name not in table.column_names]
    out = Profile(rows=table.num_rows)
    jobs: dict[str, Callable[[], Sketch]] = {}
    for name in names:
        if name not in table.column_names:
            if reference is not None and name in reference.columns:
                out.columns[name] = _absent(reference.columns[name], table.num_rows)
            continue
        column = table.column(name)
        if reference is None:
            why = _not_profiled(column.type)
            if why:
                out.ignored[name] = why
            else:
                jobs[name] = partial(_reference_sketch, column)
        elif name in reference.columns:
            jobs[name] = partial(_window_sketch, column, reference.columns[name])
        elif name not in reference.ignored:
            out.extra.append(name)
    if table.num_rows < PARALLEL_ROWS or len(jobs) < 2:
        sketches = [job() for job in jobs.values()]
    else:  # sorting and counting release the GIL: big columns are sketched side by side
        with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
            sketches = list(pool.map(lambda job: job(), jobs.values()))
    out.columns.update(zip(jobs, sketches, strict=True))
    if outputs is not None:
        answers = profile(outputs, None if reference is None else _as_columns(reference.outputs))
        out.outputs = answers.columns
    return out


def _absent(reference: Sketch, rows: int) -> Sketch:
    """A column the rows lack: every row missing it (so that merged windows count it)."""
    sketch = type(reference).empty_like(reference)  # type: ignore[arg-type]
    sketch.missing = rows
    return sketch


def _as_columns(outputs: dict[str, Sketch]) -> Profile:
    return Profile(columns=outputs)


def as_table(frame: pd.DataFrame | pa.Table) -> pa.Table:
    """An Arrow table of a frame; object columns that Arrow cannot type become text."""
    if isinstance(frame, pa.Table):
        return frame
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInput(f"expected a DataFrame or an Arrow table, got {type(frame).__name__}")
    arrays = []
    for name in frame.columns:
        values = frame[name]
        try:
            arrays.append(pa.array(values, from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types in one column
            arrays.append(pa.array(values.map(_text_or_none), type=pa.string()))
    return pa.Table.from_arrays(arrays, names=[str(n) for n in frame.columns])


def _text_or_none(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _not_profiled(kind: pa.DataType) -> str | None:
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return "binary values (images) are not profiled"
    if pa.types.is_nested(kind):
        return "nested values are not profiled"
    if pa.types.is_null(kind):
        return "every value is missing"
    return None


def _is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def _is_time(kind: pa.DataType) -> bool:
    return pa.types.is_timestamp(kind) or pa.types.is_date(kind)


def _numbers(column: pa.ChunkedArray) -> tuple[np.ndarray, int]:
    """Values as floats (missing as NaN) and how many were not numbers."""
    kind = column.type
    if _is_number(kind) or pa.types.is_boolean(kind):
        return column.to_numpy().astype(float, copy=False), 0
    if _is_time(kind):
        # Nanoseconds are more than a drift test needs: truncated, not refused.
        seconds = pc.cast(pc.cast(column, pa.timestamp("us"), safe=False), pa.int64())
        return np.asarray(seconds.to_numpy(zero_copy_only=False), dtype=float) / 1e6, 0
    text = pd.Series(column.to_numpy(zero_copy_only=False), dtype=object)
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, copy=True)
    # Blank text and "NaN" are missing values (as serving takes them), not wrong types.
    blank = text.map(lambda v: isinstance(v, str) and v.lower() in _BLANK).to_numpy(bool)
    failed = np.isnan(values) & text.notna().to_numpy() & ~blank
    if failed.any():
        # Times arrive as ISO 8601 text in JSON: as seconds, like a reference's times.
        when = pd.to_datetime(text[failed], errors="coerce", utc=True, format="ISO8601")
        known = when.notna().to_numpy()
        stamps = when[known].to_numpy(dtype="datetime64[us]").astype(np.int64)
        values[np.flatnonzero(failed)[known]] = stamps / 1e6
        failed[np.flatnonzero(failed)[known]] = False
    return values, int(np.count_nonzero(failed))


def _reference_sketch(column: pa.ChunkedArray) -> Sketch:
    if _is_number(column.type) or _is_time(column.type):
        values, invalid = _numbers(column)
        return NumericSketch.of_reference(values, invalid=invalid)
    values, counts, missing = _value_counts(column)
    return _categories(CategorySketch(), values, counts, missing, vocabulary=None)


def _window_sketch(column: pa.ChunkedArray, reference: Sketch) -> Sketch:
    if isinstance(reference, NumericSketch):
        sketch = NumericSketch.empty_like(reference)
        values, invalid = _numbers(column)
        sketch.update(values, invalid=invalid)
        return sketch
    values, counts, missing = _value_counts(column)
    return _categories(
        CategorySketch.empty_like(reference), values, counts, missing, reference.vocabulary
    )


def _value_counts(column: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray, int]:
    """Distinct values as text, their counts, and the missing count."""
    text = _as_text(column)
    counted = pc.value_counts(text.drop_null())
    counts = np.asarray(counted.field("counts"), dtype=np.int64)
    return counted.field("values"), counts, text.null_count


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    kind = column.type
    if pa.types.is_nested(kind):  # a list or an object where the reference had text
        texts = [None if v is None else json.dumps(v, sort_keys=True, default=str)
                 for v in column.to_pylist()]  # fmt: skip
        return pa.chunked_array([pa.array(texts, pa.string())])
    if pa.types.is_dictionary(kind):
        column = pc.cast(column, kind.value_type)
        kind = column.type
    if pa.types.is_floating(kind):
        # 1.0 and 1 are one category: whole floats are written as integers.
        values = column.to_numpy()
        whole = np.isfinite(values) & (np.mod(values, 1) == 0)
        if whole[~np.isnan(values)].all() and (np.abs(values[whole]) < 2**53).all():
            return pa.chunked_array(
                [pa.array(values, from_pandas=True).cast(pa.int64()).cast(pa.string())]
            )
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column
    return pc.cast(column, pa.string())


def _categories(
    sketch: CategorySketch,
    values: pa.Array,
    counts: np.ndarray,
    missing: int,
    vocabulary: frozenset[str] | None,
) -> CategorySketch:
    if vocabulary is not None and sketch.complete and len(values):
        known = pc.is_in(values, value_set=pa.array(sorted(vocabulary), pa.string()))
        sketch.unseen += int(counts[~np.asarray(known, dtype=bool)].sum())
    if counts.size > CAPACITY:  # keep the most common by name, pool the rest
        top = np.argsort(-counts, kind="stable")[:CAPACITY]
        sketch.other += int(counts.sum() - counts[top].sum())
        values, counts = values.take(pa.array(top)), counts[top]
    named = dict(zip(values.to_pylist(), counts.tolist(), strict=True))
    sketch.missing += missing
    for value, count in named.items():
        sketch.counts[value] = sketch.counts.get(value, 0) + count
    if vocabulary is None:
        sketch.vocabulary = frozenset(sketch.counts)
        sketch.complete = sketch.other == 0
    return sketch
