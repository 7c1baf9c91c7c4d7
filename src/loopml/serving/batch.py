"""Predicting whole tables: a frame checked against the model's inputs, answered as
columns (the batch job writes them as Parquet)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from loopml.core.enums import TaskType
from loopml.core.errors import InvalidInput
from loopml.core.schemas import Deployment, ModelVersion
from loopml.serving.predict import Rows, decided, image_value

if TYPE_CHECKING:
    from loopml.automl import AutoML


def check_table(frame: pd.DataFrame, version: ModelVersion) -> Rows:
    """The model's columns of ``frame``: a value that is not a number in a numeric column
    is refused naming its row (the frame's index) and column; absent columns are missing
    values; others are ignored."""
    numeric = {c["name"] for c in version.inputs if c["kind"] == "numeric"}
    images = {c["name"] for c in version.inputs if c["kind"] == "image"}
    columns: dict[str, pd.Series] = {}
    for spec in version.inputs:
        name = spec["name"]
        if name not in frame.columns:
            columns[name] = pd.Series(np.nan if name in numeric else None, index=frame.index)
            continue
        values = frame[name]
        if name in images:  # bytes as they are, base64 text (from a file) decoded
            rows = [
                int(r) if isinstance(r, int | np.integer) else i for i, r in enumerate(frame.index)
            ]
            decoded = [image_value(v, r, name) for r, v in zip(rows, values.tolist(), strict=True)]
            columns[name] = pd.Series(decoded, index=frame.index, dtype=object)
            continue
        if name in numeric and (
            pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values)
        ):
            values = _numbers(frame, name, values)
        columns[name] = values
    ignored = sorted(set(map(str, frame.columns)) - set(columns))
    return Rows(frame=pd.DataFrame(columns).reset_index(drop=True), ignored=ignored)


def _numbers(frame: pd.DataFrame, name: str, values: pd.Series) -> pd.Series:
    """``values`` as numbers; the first that is not one (text that does not parse, or a
    boolean, as /predict says of True) is refused naming its row."""
    flags = values.map(lambda v: isinstance(v, bool | np.bool_), na_action="ignore")
    parsed = pd.to_numeric(values, errors="coerce")
    unparsed = parsed.isna() & values.notna() & (values.astype("string").str.strip() != "")
    bad = flags.fillna(False).astype(bool).to_numpy() | unparsed.to_numpy()
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        raise _not_a_number(frame, at, name, values.iloc[at])
    return parsed


def _not_a_number(frame: pd.DataFrame, at: int, name: str, value: object) -> InvalidInput:
    row = frame.index[at]
    value = value.item() if isinstance(value, np.generic) else value
    return InvalidInput(
        f"row {row}: {name!r} must be a number, got {value!r}",
        field=name,
        row=int(row) if isinstance(row, int | np.integer) else None,
        column=name,
    )


def predict_table(
    model: AutoML, rows: Rows, version: ModelVersion, deployment: Deployment
) -> pd.DataFrame:
    """One row of answers per input row: ``value``, or ``label``, ``confidence``,
    ``abstained`` and ``probability_<class>`` per class."""
    if version.task is TaskType.regression:
        return pd.DataFrame({"value": np.asarray(model.predict(rows.frame), dtype=float)})
    proba, codes, confidence = decided(model, rows)
    classes = np.asarray(model.classes_ if model.classes_ is not None else [], dtype=object)
    limit = deployment.confidence_threshold
    abstained = confidence < limit if limit is not None else np.zeros(len(codes), dtype=bool)
    labels = classes[codes]
    if limit is not None:  # the fallback is text: labels are text too, one type per column
        labels = np.where(abstained, deployment.fallback_label, labels.astype(str))
    out = {"label": labels, "confidence": confidence, "abstained": abstained}
    for i, name in enumerate(classes):
        out[f"probability_{name}"] = proba[:, i]
    return pd.DataFrame(out)
