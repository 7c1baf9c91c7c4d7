"""The frozen test split of a dataset version.

Every version holds out test rows once, when it is made; training sees only the rest,
so that a model is never chosen by its score on the rows that judge it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from loopml.core.enums import TaskType
from loopml.core.errors import InvalidInput
from loopml.core.schemas import DatasetSchema

METHODS = ("auto", "random", "stratified", "grouped", "time", "predefined")
DEFAULT_TEST_SIZE = 0.2


def check_split_options(options: dict[str, Any]) -> dict[str, Any]:
    """Validated split options with defaults filled in."""
    unknown = set(options) - {"method", "test_size", "seed", "column"}
    if unknown:
        raise InvalidInput(f"unknown split options {sorted(unknown)}", field="split")
    method = options.get("method", "auto")
    if method not in METHODS:
        raise InvalidInput(
            f"unknown split method {method!r}; choose one of {', '.join(METHODS)}", field="split"
        )
    test_size = float(options.get("test_size", DEFAULT_TEST_SIZE))
    if not 0.0 <= test_size < 1.0:
        raise InvalidInput("split test_size must be at least 0 and below 1", field="split")
    if method in ("grouped", "time") and not options.get("column"):
        raise InvalidInput(f"a {method} split needs a column", field="split")
    seed = int(options.get("seed", 0))
    return {"method": method, "test_size": test_size, "seed": seed, "column": options.get("column")}


def assign_split(
    table: pa.Table,
    schema: DatasetSchema,
    options: dict[str, Any],
    predefined: list[bool] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """A boolean mask of test rows and a description of how it was made."""
    options = check_split_options(options)
    method, test_size, seed, column = (
        options[k] for k in ("method", "test_size", "seed", "column")
    )
    n = table.num_rows
    rng = np.random.default_rng(seed)
    if method == "auto":
        if predefined is not None:
            method = "predefined"
        elif schema.target and schema.task and schema.task is not TaskType.regression:
            method = "stratified"
        else:
            method = "random"
    if column is not None and column not in table.column_names:
        raise InvalidInput(f"split column {column!r} is not a column of the data", field="split")
    if method == "predefined":
        if predefined is None:
            raise InvalidInput("this source defines no train/test division", field="split")
        test = np.asarray(predefined, dtype=bool)
    elif test_size == 0:
        test = np.zeros(n, dtype=bool)
    elif method == "random":
        test = _random(n, test_size, rng)
    elif method == "stratified":
        if not schema.target:
            raise InvalidInput("a stratified split needs a target", field="split")
        test = _stratified(table.column(schema.target).to_pandas(), test_size, rng)
    elif method == "grouped":
        test = _grouped(table.column(column).to_pandas(), test_size, rng)
    else:
        test = _time(table.column(column).to_pandas(), test_size)
    if n > 1 and test.all():
        raise InvalidInput("the split leaves no rows for training", field="split")
    described = {
        "method": method,
        "test_size": test_size,
        "seed": seed,
        "column": column,
        "train_rows": int(n - test.sum()),
        "test_rows": int(test.sum()),
    }
    return test, described


def _random(n: int, test_size: float, rng: np.random.Generator) -> np.ndarray:
    test = np.zeros(n, dtype=bool)
    test[rng.permutation(n)[: round(n * test_size)]] = True
    return test


def _stratified(y: pd.Series, test_size: float, rng: np.random.Generator) -> np.ndarray:
    test = np.zeros(len(y), dtype=bool)
    codes, _ = pd.factorize(y, use_na_sentinel=True)
    for code in np.unique(codes):
        rows = np.flatnonzero(codes == code)
        # A class of one row stays in training: it could not be learned from the test side.
        take = round(len(rows) * test_size) if len(rows) > 1 else 0
        test[rng.permutation(rows)[:take]] = True
    return test


def _grouped(groups: pd.Series, test_size: float, rng: np.random.Generator) -> np.ndarray:
    codes, uniques = pd.factorize(groups, use_na_sentinel=False)
    sizes = np.bincount(codes)
    chosen = np.zeros(len(uniques), dtype=bool)
    wanted, held = test_size * len(groups), 0
    for group in rng.permutation(len(uniques)):
        if held >= wanted:
            break
        chosen[group] = True
        held += sizes[group]
    return chosen[codes]


def _time(times: pd.Series, test_size: float) -> np.ndarray:
    # Text (object, or pandas' own string dtype) is parsed; numbers and times order as they are.
    text = times.dtype == object or pd.api.types.is_string_dtype(times.dtype)
    order = pd.to_datetime(times, errors="coerce", format="mixed") if text else times
    if order.isna().all():
        raise InvalidInput("the time split column holds no readable times", field="split")
    cutoff = order.quantile(1 - test_size)
    # Rows at the cut-off instant all go to test, so no moment is split across both sides.
    return np.asarray((order >= cutoff).fillna(False), dtype=bool)
