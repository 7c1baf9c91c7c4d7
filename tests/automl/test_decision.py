"""Decisions: the binary threshold (costs, threshold metrics) and abstaining."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_wine

from loopml.automl import METRICS, AutoML
from loopml.automl.decision import decide, expected_cost
from loopml.core.errors import InvalidInput

from .support import automl, linear_frame


def _errors(y: np.ndarray, p1: np.ndarray, threshold: float) -> tuple[int, int]:
    """False negatives and false positives when deciding positive at ``p1 >= threshold``."""
    positive = p1 >= threshold
    return int(np.sum(~positive & (y == 1))), int(np.sum(positive & (y == 0)))


def _hard(p1: np.ndarray, threshold: float) -> np.ndarray:
    positive = (p1 >= threshold).astype(float)
    return np.column_stack([1 - positive, positive])


def test_expensive_false_negatives_lower_the_threshold() -> None:
    X, y = linear_frame(n=300, noise=1.0)
    costs = {"fp": 1.0, "fn": 10.0}
    model = automl(cost_matrix=costs).fit(X, y)
    assert model.threshold_ < 0.5
    p1 = model.oof_predictions_[:, 1]
    fn_tuned, fp_tuned = _errors(y, p1, model.threshold_)
    fn_half, fp_half = _errors(y, p1, 0.5)
    assert fn_tuned < fn_half
    assert fp_tuned > fp_half  # the price paid, in cheap errors
    full = {"tp": 0.0, "tn": 0.0, **costs}
    assert expected_cost(y, p1, model.threshold_, full) < expected_cost(y, p1, 0.5, full)
    # predict applies the tuned threshold, not the most probable class.
    proba = model.predict_proba(X)
    np.testing.assert_array_equal(model.predict(X), (proba[:, 1] >= model.threshold_).astype(int))
    assert model.report_ is None


def test_expensive_false_positives_raise_the_threshold() -> None:
    X, y = linear_frame(n=300, noise=1.0)
    model = automl(cost_matrix={"fp": 10, "fn": 1}).fit(X, y)
    assert model.threshold_ > 0.5


@pytest.mark.parametrize("metric", ["f1", "balanced_accuracy", "accuracy"])
def test_a_threshold_metric_tunes_the_threshold(metric: str) -> None:
    X, y = linear_frame(n=400, positive_rate=0.12, noise=1.5)
    model = automl(metric=metric).fit(X, y)
    p1 = model.oof_predictions_[:, 1]
    score = METRICS[metric].value
    grid = np.linspace(0.01, 0.99, 99)
    best_on_grid = max(score(y, _hard(p1, t)) for t in grid)
    tuned = score(y, _hard(p1, model.threshold_))
    assert tuned >= best_on_grid - 1e-12
    assert tuned >= score(y, _hard(p1, 0.5))
    if metric != "accuracy":  # rare positives: recall needs a low threshold
        assert model.threshold_ < 0.4


def test_probability_metrics_keep_one_half_and_regression_has_no_threshold() -> None:
    X, y = linear_frame(n=100)
    assert automl().fit(X, y).threshold_ == 0.5
    assert automl().fit(X, X["a"] * 2.0).threshold_ is None


@pytest.fixture(scope="module")
def wine() -> tuple[AutoML, Any, Any]:
    X, y = load_wine(return_X_y=True, as_frame=True)
    return automl(confidence_threshold=0.97).fit(X, y), X, y


@pytest.mark.parametrize("fallback", [None, -1])
def test_low_confidence_rows_get_the_fallback_label(
    wine: tuple[AutoML, Any, Any], fallback: int | None
) -> None:
    model, X, _ = wine
    if fallback is not None:
        model = copy.copy(model).set_params(fallback_label=fallback)
    expected_fallback = "unknown" if fallback is None else fallback
    proba = model.predict_proba(X)
    pred = model.predict(X)
    unsure = proba.max(axis=1) < 0.97
    assert 0 < unsure.sum() < len(X)  # the test covers both sides
    assert all(p == expected_fallback for p in pred[unsure])
    np.testing.assert_array_equal(
        pred[~unsure].astype(int), model.classes_[proba[~unsure].argmax(axis=1)]
    )


def test_abstaining_composes_with_the_binary_threshold() -> None:
    X, y = linear_frame(n=200)
    model = automl(cost_matrix={"fp": 1, "fn": 5}, confidence_threshold=0.8).fit(X, y)
    proba = model.predict_proba(X)
    pred = model.predict(X)
    decided = (proba[:, 1] >= model.threshold_).astype(int)
    unsure = proba[np.arange(len(proba)), decided] < 0.8  # confidence in the class decided
    assert (pred[unsure] == "unknown").all()
    np.testing.assert_array_equal(pred[~unsure].astype(int), decided[~unsure])


def test_confidence_is_that_of_the_class_decided_not_of_the_likeliest() -> None:
    # A cost threshold of 0.09 calls this row positive, though the model is 90% sure it
    # is negative: that is not a confident answer.
    proba = np.array([[0.9, 0.1], [0.05, 0.95], [0.95, 0.05]])
    labels = decide(proba, np.array(["no", "yes"]), 0.09, 0.8, "unknown")
    assert labels.tolist() == ["unknown", "yes", "no"]


def test_without_a_confidence_threshold_every_row_gets_a_class(
    wine: tuple[AutoML, Any, Any],
) -> None:
    model, X, y = wine
    model = copy.copy(model).set_params(confidence_threshold=None)
    assert set(model.predict(X)) <= set(y)


@pytest.mark.parametrize(
    "costs",
    [
        {"fp": 1},
        {"fn": 1},
        {"fp": "expensive", "fn": 1},
        {"fp": None, "fn": 1},
        {"fp": 0, "fn": 1},  # an error costing no more than a correct decision
        {"fp": 1, "fn": 2, "tp": 3},
        {"fp": 1, "fn": 5, "fee": 1},
        {"fp": float("nan"), "fn": 1},
        {"fp": 1, "fn": float("inf")},
        [1, 5],
    ],
    ids=[
        "no-fn",
        "no-fp",
        "text",
        "none",
        "free-error",
        "tp-above-fn",
        "unknown",
        "nan",
        "inf",
        "list",
    ],
)
def test_bad_cost_matrices_are_invalid_input(costs: Any) -> None:
    X, y = linear_frame(n=30)
    with pytest.raises(InvalidInput) as info:
        automl(cost_matrix=costs).fit(X, y)
    assert info.value.field == "cost_matrix"
