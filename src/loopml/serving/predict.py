"""Checking request rows against a model's inputs, and answering them.

A value of the wrong kind is refused naming its row and column; a column the model does
not know is ignored (and reported); a column the request lacks is a missing value, which
every loopml model handles.
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loopml.automl.decision import choose
from loopml.core.enums import TaskType
from loopml.core.errors import InvalidInput
from loopml.core.ids import new_id
from loopml.core.schemas import Deployment, ModelVersion

if TYPE_CHECKING:
    from loopml.automl import AutoML

MAX_ROWS = 100_000
# Taken as they are: the model treats non-finite floats as missing, as _number does.
# (An int may be too large for a float: _number checks it.)
_PLAIN_NUMBERS = frozenset({float})


@dataclass
class Rows:
    """Request rows as the model reads them: a frame, or (from a request) the model's
    columns as lists, which the model parses without building a DataFrame."""

    frame: pd.DataFrame | dict[str, list[Any]]
    ignored: list[str]


@dataclass(frozen=True)
class Inputs:
    """A model version's inputs as a request is checked against them."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    known: frozenset[str]
    has_images: bool


# Worked out once per version object (the lookups hand requests the same one for a
# while): on a one-row request this was a tenth of the checking.
_INPUTS: dict[int, tuple[ModelVersion, Inputs]] = {}


def inputs_of(version: ModelVersion) -> Inputs:
    hit = _INPUTS.get(id(version))
    if hit is not None and hit[0] is version:
        return hit[1]
    names = tuple(c["name"] for c in version.inputs)
    kinds = tuple(c["kind"] for c in version.inputs)
    found = Inputs(names, kinds, frozenset(names), "image" in kinds)
    if len(_INPUTS) >= 64:
        _INPUTS.clear()
    _INPUTS[id(version)] = (version, found)
    return found


def check_rows(records: Any, version: ModelVersion, first_line: int | None = None) -> Rows:
    """A frame of ``records`` (a list of objects) with the model's columns.

    ``first_line`` is the file line of the first record (CSV), so that errors name lines.
    """
    if not isinstance(records, list) or not records:
        raise InvalidInput("send a non-empty list of records (objects)", field="records")
    if len(records) > MAX_ROWS:
        raise InvalidInput(f"at most {MAX_ROWS:,} records per request", field="records")
    inputs = inputs_of(version)
    lists: list[list[Any]] = [[] for _ in inputs.names]
    plan = list(zip(inputs.names, inputs.kinds, lists, strict=True))
    seen: set[str] = set()
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidInput(f"record {i} is not an object", field=f"records[{i}]")
        seen.update(record)
        for name, kind, values in plan:
            value = record.get(name)
            if kind == "numeric":
                if type(value) not in _PLAIN_NUMBERS:  # a JSON number needs no checks
                    value = _number(value, i, name, first_line)
            elif kind == "image":
                value = image_value(value, i, name)
            elif isinstance(value, dict | list):
                raise InvalidInput(
                    f"record {i}: {name!r} holds a nested value", field=f"records[{i}].{name}"
                )
            values.append(value)
    ignored = sorted(seen - inputs.known)
    return Rows(frame=dict(zip(inputs.names, lists, strict=True)), ignored=ignored)


def _number(value: Any, row: int, column: str, first_line: int | None) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _not_a_number(value, row, column, first_line)
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float: as infinite, so missing
        return None
    except ValueError:
        raise _not_a_number(value, row, column, first_line) from None
    return number if math.isfinite(number) else None


def image_value(value: Any, row: int, column: str) -> bytes | None:
    """Image bytes from raw bytes or base64 text (a ``data:`` URL prefix is allowed);
    anything else is refused naming the record and column."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        text = value.split(",", 1)[1] if value.startswith("data:") else value
        text = "".join(text.split())  # base64 as `base64` prints it, wrapped at 76
        if not text:
            return None  # blank: a missing image, as a blank number is a missing number
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            pass
    raise InvalidInput(
        f"record {row}: {column!r} must be an image (PNG, JPEG) as base64 text",
        field=f"records[{row}].{column}",
        row=row,
        column=column,
    )


def _not_a_number(value: Any, row: int, column: str, first_line: int | None) -> InvalidInput:
    where = f"record {row}" if first_line is None else f"line {first_line + row}"
    return InvalidInput(
        f"{where}: {column!r} must be a number, got {value!r}",
        field=f"records[{row}].{column}",
        row=row,
        column=column,
    )


def answer(
    model: AutoML,
    rows: Rows,
    version: ModelVersion,
    deployment: Deployment,
    predicted: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """One answer per row: label (or value), probabilities, confidence, abstained, ids.

    ``predicted`` is the model's probabilities or values for ``rows`` where they were
    made already (in a batch); otherwise the model predicts them here.
    """
    try:
        if predicted is None:
            predicted = predict_native(model, rows.frame)
        return _answer(model, predicted, version, deployment)
    except InvalidInput as exc:  # an image the model cannot decode: name the record
        row = exc.extra.get("row")
        images = [c["name"] for c in version.inputs if c["kind"] == "image"]
        if row is None or not images:
            raise
        raise InvalidInput(
            exc.message.replace(f"row {row}:", f"record {row}:", 1),
            field=f"records[{row}].{images[0]}",
            row=row,
            column=images[0],
        ) from exc


def _answer(
    model: AutoML, predicted: np.ndarray, version: ModelVersion, deployment: Deployment
) -> list[dict[str, Any]]:
    if version.task is TaskType.regression:
        return [
            {"prediction_id": new_id(), "value": value, "model_version": version.number}
            for value in predicted.tolist()
        ]
    proba = predicted
    codes, confidence = choose(proba, model.threshold_)
    classes = [_plain(c) for c in (model.classes_ if model.classes_ is not None else [])]
    names = [str(c) for c in classes]
    limit = deployment.confidence_threshold
    out = []
    # Python floats and ints from .tolist(): one conversion for the whole batch.
    for code, sure, row in zip(codes.tolist(), confidence.tolist(), proba.tolist(), strict=True):
        abstained = limit is not None and sure < limit
        out.append(
            {
                "prediction_id": new_id(),
                "label": deployment.fallback_label if abstained else classes[code],
                "probabilities": dict(zip(names, row, strict=True)),
                "confidence": sure,
                "abstained": abstained,
                "model_version": version.number,
            }
        )
    return out


def predict_native(model: AutoML, frame: pd.DataFrame | dict[str, list[Any]]) -> np.ndarray:
    """Class probabilities (classifiers) or values (regressors) of ``frame``'s rows."""
    if model.task_ is TaskType.regression:
        return model.predict(frame)
    return model.predict_proba(frame)


def decided(model: AutoML, rows: Rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class probabilities, the chosen class codes (the model's cost threshold for
    binary tasks, else the likeliest) and the confidence in them."""
    proba = model.predict_proba(rows.frame)
    codes, confidence = choose(proba, model.threshold_)
    return proba, codes, confidence


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
