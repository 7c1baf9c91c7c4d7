"""The target column: task inference and class encoding."""

from __future__ import annotations

import numpy as np
import pandas as pd

from loopml.core.enums import TaskType
from loopml.core.errors import InvalidInput

# Integer targets with at most this many distinct values are treated as classes.
_MAX_INTEGER_CLASSES = 20


def check_target(y: object, n_rows: int) -> pd.Series:
    """Return ``y`` as a Series of length ``n_rows`` with no missing values."""
    if isinstance(y, pd.DataFrame) and y.shape[1] == 1:
        y = y.iloc[:, 0]
    if isinstance(y, pd.Series):
        series = y
    else:
        values = np.asarray(y)
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 1:
            raise InvalidInput("the target must be one column", field="y")
        series = pd.Series(values)
    if len(series) != n_rows:
        raise InvalidInput(
            f"the target has {len(series)} values but the features have {n_rows} rows",
            field="y",
        )
    missing = int(series.isna().sum())
    if missing:
        raise InvalidInput(
            f"the target has {missing} missing values; drop those rows or label them first",
            field="y",
        )
    series = series.reset_index(drop=True)
    if series.dtype == object:
        kinds_seen = {type(v) for v in series}
        # Python numbers held as objects (parsed JSON, say) are numbers; strings stay labels.
        if all(issubclass(k, int | float) and not issubclass(k, bool) for k in kinds_seen):
            series = pd.to_numeric(series)
        elif len(kinds_seen) > 1:
            kinds = ", ".join(sorted({type(v).__name__ for v in series}))
            raise InvalidInput(f"the target mixes value types ({kinds}); use one", field="y")
    if pd.api.types.is_float_dtype(series) and not np.isfinite(series.to_numpy()).all():
        raise InvalidInput("the target holds infinite values", field="y")
    return series


def infer_task(y: pd.Series) -> TaskType:
    """Binary, multiclass or regression, from the target's values alone."""
    n_unique = y.nunique()
    if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        return TaskType.binary if n_unique <= 2 else TaskType.multiclass
    values = y.to_numpy(dtype=float)
    if np.all(np.mod(values, 1) == 0) and n_unique <= _MAX_INTEGER_CLASSES:
        return TaskType.binary if n_unique <= 2 else TaskType.multiclass
    return TaskType.regression


def resolve_task(task: str, y: pd.Series) -> TaskType:
    """The task to solve: the caller's choice checked against the target, or inferred."""
    if task == "auto":
        resolved = infer_task(y)
    else:
        try:
            resolved = TaskType(task)
        except ValueError:
            names = ", ".join(["auto", *(t.value for t in TaskType)])
            raise InvalidInput(
                f"unknown task {task!r}; choose one of: {names}", field="task"
            ) from None
    n_unique = y.nunique()
    if resolved is not TaskType.regression and n_unique < 2:
        raise InvalidInput(
            f"the target has only one class ({y.iloc[0]!r}); a classifier needs at least two",
            field="y",
        )
    if resolved is TaskType.binary and n_unique > 2:
        raise InvalidInput(
            f"task 'binary' needs two classes but the target has {n_unique}", field="task"
        )
    if resolved is TaskType.regression and not pd.api.types.is_numeric_dtype(y):
        raise InvalidInput("task 'regression' needs a numeric target", field="task")
    return resolved


def encode_classes(y: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Sorted class labels and the integer code of each row."""
    classes, codes = np.unique(y.to_numpy(), return_inverse=True)
    return classes, codes.astype(np.int64)
