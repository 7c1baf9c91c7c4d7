"""What each input column is, and its raw values parsed by that kind.

The plan is decided once from the training features (no labels, no statistics
that a fold could leak): numeric, boolean, datetime, categorical, text, or dropped
with a reason. Statistics (medians, vocabularies, text projections) are learned per
training fold in :mod:`loopml.automl.encoding`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from loopml.automl.images import is_image_value, plan_shape, to_arrays
from loopml.core.errors import InvalidInput

KINDS = ("numeric", "boolean", "datetime", "categorical", "text", "image")
# A string column is numeric when this share of its non-missing values parse as numbers.
_NUMERIC_SHARE = 0.95
# Free text: several words per value and mostly distinct values.
_TEXT_MIN_WORDS = 3.0
_TEXT_MIN_DISTINCT = 0.5
_SAMPLE = 500
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class ColumnPlan:
    """How one input column is used."""

    name: str
    kind: str
    has_time: bool = False  # datetime columns: whether hours/minutes vary
    shape: tuple[int, int, int] | None = None  # image columns: height, width, channels


@dataclass
class Schema:
    """The plan for every input column, in input order."""

    columns: list[ColumnPlan]
    dropped: dict[str, str] = field(default_factory=dict)
    _names: dict[str | None, list[str]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def names(self, kind: str | None = None) -> list[str]:
        """The columns of ``kind`` (all when None), in input order."""
        # Asked on every prediction: worked out once (the plan does not change).
        if self._names is None:
            self._names = {None: [c.name for c in self.columns]}
            for k in KINDS:
                self._names[k] = [c.name for c in self.columns if c.kind == k]
        return self._names.get(kind, [])

    def to_state(self) -> dict[str, Any]:
        columns: list[list[Any]] = []
        for c in self.columns:
            columns.append([c.name, c.kind, c.has_time, *([list(c.shape)] if c.shape else [])])
        return {"columns": columns, "dropped": dict(self.dropped)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Schema:
        columns = []
        for name, kind, has_time, *rest in state["columns"]:
            shape = tuple(int(v) for v in rest[0]) if rest else None
            columns.append(ColumnPlan(str(name), str(kind), bool(has_time), shape))  # type: ignore[arg-type]
        return cls(columns, {str(k): str(v) for k, v in state["dropped"].items()})


@dataclass
class RawFrame:
    """Parsed inputs: one float matrix for numbers, string arrays for the rest."""

    numeric: np.ndarray  # n x p float64, NaN for missing
    numeric_names: list[str]
    categorical: list[np.ndarray]  # object arrays of str or None
    categorical_names: list[str]
    text: list[np.ndarray]  # object arrays of str
    text_names: list[str]
    images: list[np.ndarray] = field(default_factory=list)  # n x H x W x C uint8 each
    image_names: list[str] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return int(self.numeric.shape[0])

    def take(self, rows: np.ndarray) -> RawFrame:
        return RawFrame(
            self.numeric[rows],
            self.numeric_names,
            [c[rows] for c in self.categorical],
            self.categorical_names,
            [t[rows] for t in self.text],
            self.text_names,
            [i[rows] for i in self.images],
            self.image_names,
        )


def check_frame(X: object) -> pd.DataFrame:
    """Accept a DataFrame (or anything pandas can make one of) with string column names."""
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
    if frame.shape[0] == 0:
        raise InvalidInput("the features have no rows", field="X")
    if frame.columns.duplicated().any():
        dupes = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise InvalidInput(f"duplicate column names: {', '.join(dupes)}", field="X")
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    return frame


def check_columns(X: Mapping[Any, list[Any]]) -> dict[str, list[Any]]:
    """Accept a mapping of column names to equally long, non-empty lists (the prediction
    fast path: no DataFrame is built)."""
    lengths = {len(v) for v in X.values()}
    if len(lengths) > 1:
        raise InvalidInput(f"the columns have different lengths: {sorted(lengths)}", field="X")
    if not X or lengths == {0}:
        raise InvalidInput("the features have no rows", field="X")
    out = {str(k): v for k, v in X.items()}
    if len(out) < len(X):
        raise InvalidInput("two columns have the same name as text", field="X")
    return out


def _as_text(series: pd.Series) -> pd.Series:
    return series.dropna().astype(str)


def _parses_as_numbers(values: pd.Series) -> bool:
    if values.empty:
        return False
    parsed = pd.to_numeric(values, errors="coerce")
    return bool(parsed.notna().mean() >= _NUMERIC_SHARE)


def _parses_as_dates(values: pd.Series) -> bool:
    sample = values.head(_SAMPLE)
    if sample.empty or not sample.str.contains(r"\d[-/:.]\d", regex=True).all():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce", utc=True, format="mixed")
    return bool(parsed.notna().mean() >= _NUMERIC_SHARE)


def _plan_column(name: str, series: pd.Series) -> ColumnPlan | str:
    """A plan, or the reason the column is dropped."""
    non_null = series.dropna()
    if non_null.empty:
        return "all values are missing"
    if series.dtype == object and any(is_image_value(v) for v in non_null.iloc[:20]):
        return ColumnPlan(name, "image", shape=plan_shape(non_null.tolist(), name))
    if pd.api.types.is_bool_dtype(series):
        return ColumnPlan(name, "boolean") if non_null.nunique() > 1 else "constant"
    if pd.api.types.is_datetime64_any_dtype(series):
        return _datetime_plan(name, series)
    if pd.api.types.is_timedelta64_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return ColumnPlan(name, "numeric") if non_null.nunique() > 1 else "constant"
    text = _as_text(series)
    if text.nunique() <= 1:
        return "constant"
    if _parses_as_numbers(text):
        return ColumnPlan(name, "numeric")
    if _parses_as_dates(text):
        return _datetime_plan(name, series)
    sample = text.head(_SAMPLE)
    words = sample.str.split().str.len().mean()
    distinct = text.nunique() / len(text)
    if words >= _TEXT_MIN_WORDS and distinct >= _TEXT_MIN_DISTINCT:
        return ColumnPlan(name, "text")
    if distinct == 1.0 and len(text) >= 20:
        return "identifier-like: every value is different"
    return ColumnPlan(name, "categorical")


def _to_datetime(series: pd.Series) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if pd.api.types.is_datetime64_any_dtype(series):
            if getattr(series.dt, "tz", None) is None:
                return series.dt.tz_localize("UTC")
            return series.dt.tz_convert("UTC")
        return pd.to_datetime(series.astype(object), errors="coerce", utc=True, format="mixed")


def _datetime_plan(name: str, series: pd.Series) -> ColumnPlan | str:
    parsed = _to_datetime(series).dropna()
    if parsed.nunique() <= 1:
        return "constant"
    has_time = bool((parsed.dt.hour != 0).any() or (parsed.dt.minute != 0).any())
    return ColumnPlan(name, "datetime", has_time=has_time)


def plan_columns(X: pd.DataFrame) -> Schema:
    """Decide the kind of every column of the training features."""
    columns: list[ColumnPlan] = []
    dropped: dict[str, str] = {}
    for name in X.columns:
        plan = _plan_column(name, X[name])
        if isinstance(plan, str):
            dropped[name] = plan
        else:
            columns.append(plan)
    if not columns:
        raise InvalidInput(
            "no usable feature: every column is constant, empty or an identifier", field="X"
        )
    return Schema(columns, dropped)


def _numeric_values(series: pd.Series) -> np.ndarray:
    if isinstance(series.dtype, np.dtype) and series.dtype.kind in "fiu":
        # Plain numpy numbers: nothing to coerce (the prediction hot path).
        return series.to_numpy(dtype=float)
    if pd.api.types.is_timedelta64_dtype(series):
        return series.dt.total_seconds().to_numpy(dtype=float)
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    values = series.astype(object)
    try:
        numbers = pd.to_numeric(values, errors="coerce")
    except OverflowError:  # an integer beyond any float: missing, as infinities are
        values = values.map(_no_huge_int)
        numbers = pd.to_numeric(values, errors="coerce")
    return numbers.to_numpy(dtype=float, na_value=np.nan)


def _no_huge_int(value: Any) -> Any:
    return None if isinstance(value, int) and value.bit_length() > 1024 else value


def _boolean_values(series: pd.Series) -> np.ndarray:
    lowered = series.astype(object).map(
        lambda v: v if isinstance(v, bool | np.bool_) else str(v).strip().lower(),
        na_action="ignore",
    )
    mapped = lowered.map({True: 1.0, False: 0.0, "true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0})
    return mapped.to_numpy(dtype=float, na_value=np.nan)


def _datetime_parts(series: pd.Series, has_time: bool) -> list[np.ndarray]:
    dt = _to_datetime(series)
    parts = [dt.dt.year, dt.dt.month, dt.dt.day, dt.dt.day_of_week, dt.dt.day_of_year]
    if has_time:
        parts.append(dt.dt.hour + dt.dt.minute / 60.0)
    epoch_days = (dt - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds() / 86400.0
    parts.append(epoch_days)
    return [p.to_numpy(dtype=float, na_value=np.nan) for p in parts]


_DATE_PARTS = ("year", "month", "day", "weekday", "dayofyear")


def _strings(series: pd.Series) -> np.ndarray:
    out = series.astype(object).map(str, na_action="ignore").to_numpy(dtype=object, copy=True)
    out[pd.isna(series).to_numpy()] = None
    return out


def _numbers_of_list(values: list[Any]) -> np.ndarray:
    try:  # floats, ints and None (as NaN): no pandas needed
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError, OverflowError):
        return _numeric_values(pd.Series(values, dtype=object))


def _strings_of_list(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = [None if v is None or v != v else str(v) for v in values]  # v != v: NaN
    return out


def _numeric_matrix(columns: list[np.ndarray | list[Any]], n: int) -> np.ndarray:
    """Rows x columns of floats; a request's columns (lists of numbers and None) are
    converted in one call, which on a row or two costs a tenth of one call per column."""
    if not columns:
        return np.empty((n, 0))
    if all(isinstance(c, list) for c in columns):
        try:
            return np.array(columns, dtype=np.float64).T.copy()
        except (TypeError, ValueError, OverflowError):
            pass  # a value that is no number: each column parsed on its own
    arrays = [_numbers_of_list(c) if isinstance(c, list) else c for c in columns]
    return np.column_stack(arrays).astype(np.float64)


def parse(X: pd.DataFrame | Mapping[str, list[Any]], schema: Schema) -> RawFrame:
    """Parse features by the plan. Columns the plan needs but ``X`` lacks are all-missing.

    ``X`` may also be a mapping of column names to equally long lists (a request's rows),
    parsed without building a DataFrame.
    """
    if isinstance(X, pd.DataFrame):
        n = len(X)
        missing = pd.Series([None] * n, dtype=object)
        columns: Mapping[str, Any] = X
    else:
        n = len(next(iter(X.values()))) if X else 0
        missing, columns = [None] * n, X
    numeric: list[np.ndarray | list[Any]] = []
    numeric_names: list[str] = []
    cats: list[np.ndarray] = []
    texts: list[np.ndarray] = []
    images: list[np.ndarray] = []
    for plan in schema.columns:
        series = columns.get(plan.name, missing)
        if plan.kind == "image":
            assert plan.shape is not None
            values = series if isinstance(series, list) else series.tolist()
            images.append(to_arrays(values, plan.shape))
            continue
        if isinstance(series, list):
            if plan.kind == "numeric":
                numeric.append(series)  # made an array below, with the others
                numeric_names.append(plan.name)
                continue
            if plan.kind in ("categorical", "text"):
                strings = _strings_of_list(series)
                if plan.kind == "text":
                    strings[pd.isna(strings)] = ""
                (cats if plan.kind == "categorical" else texts).append(strings)
                continue
            series = pd.Series(series, dtype=object)
        if plan.kind == "numeric":
            numeric.append(_numeric_values(series))
            numeric_names.append(plan.name)
        elif plan.kind == "boolean":
            numeric.append(_boolean_values(series))
            numeric_names.append(plan.name)
        elif plan.kind == "datetime":
            parts = _datetime_parts(series, plan.has_time)
            names = [*_DATE_PARTS, *(["time"] if plan.has_time else []), "epoch_days"]
            numeric.extend(parts)
            numeric_names.extend(f"{plan.name}.{p}" for p in names)
        elif plan.kind == "categorical":
            cats.append(_strings(series))
        else:
            strings = _strings(series)
            strings[pd.isna(strings)] = ""
            texts.append(strings)
    matrix = _numeric_matrix(numeric, n)
    # Infinities (x/0, "inf") and values beyond float32 (what tree libraries use) are
    # treated as missing: one of them would otherwise break several learners.
    with np.errstate(invalid="ignore"):
        matrix[~(np.abs(matrix) <= _FLOAT32_MAX)] = np.nan
    return RawFrame(
        matrix,
        numeric_names,
        cats,
        schema.names("categorical"),
        texts,
        schema.names("text"),
        images,
        schema.names("image"),
    )
