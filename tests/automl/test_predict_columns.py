"""Predicting from columns of plain lists (a request's rows, no DataFrame built): the same
answers as from a DataFrame, for every column kind, missing values and odd inputs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.automl import AutoML
from loopml.core.errors import InvalidInput

from .support import automl, messy_frame


@pytest.fixture(scope="module")
def messy() -> tuple[AutoML, pd.DataFrame]:
    X, y = messy_frame()
    return automl(learners=["lightgbm", "linear"], max_trials=2).fit(X, y), X


def _as_lists(frame: pd.DataFrame) -> dict[str, list[Any]]:
    """What a JSON request gives: Python values, None for missing, dates as text."""
    out: dict[str, list[Any]] = {}
    for name in frame.columns:
        values = frame[name].astype(object).where(frame[name].notna(), None).tolist()
        out[name] = [v.isoformat() if isinstance(v, pd.Timestamp) else v for v in values]
    return out


def test_lists_answer_as_the_frame_does_for_every_column_kind(
    messy: tuple[AutoML, pd.DataFrame],
) -> None:
    model, X = messy
    rows = X.iloc[:40]
    from_frame = model.predict_proba(rows)
    from_lists = model.predict_proba(_as_lists(rows))
    np.testing.assert_allclose(from_lists, from_frame, rtol=1e-9, atol=1e-12)
    assert (model.predict(_as_lists(rows)) == model.predict(rows)).all()


def test_missing_odd_and_absent_values_in_lists(messy: tuple[AutoML, pd.DataFrame]) -> None:
    model, _ = messy
    odd = {
        "amount": [None, float("nan"), "2.5", math.inf],
        "colour": [None, "purple", 3, "red"],  # unseen, a number, a known one
        "comment": [None, "", "excellent", "awful awful"],
        "member": [True, "false", None, 1],
        "signup": ["2024-02-01", None, "not a date", "2023-06-01T10:00:00"],
    }  # no amount_text, zip_code ...: absent columns are all missing
    got = model.predict_proba(odd)
    want = model.predict_proba(pd.DataFrame(odd, dtype=object))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert got.shape == (4, 2) and np.isfinite(got).all()


def test_columns_of_different_lengths_are_refused(messy: tuple[AutoML, pd.DataFrame]) -> None:
    model, _ = messy
    with pytest.raises(InvalidInput) as err:
        model.predict_proba({"amount": [1.0, 2.0], "colour": ["red"]})
    assert "different lengths" in err.value.message and err.value.field == "X"


def test_empty_lists_are_no_rows(messy: tuple[AutoML, pd.DataFrame]) -> None:
    model, _ = messy
    with pytest.raises(InvalidInput, match="no rows"):
        model.predict_proba({"amount": [], "colour": []})


def test_lists_without_any_model_column_are_refused(messy: tuple[AutoML, pd.DataFrame]) -> None:
    model, _ = messy
    with pytest.raises(InvalidInput, match="none of the model's columns"):
        model.predict_proba({"AMOUNT": [1.0]})
