"""Task inference, default metrics, original class labels, and the metric implementations."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from loopml.automl import METRICS
from loopml.core.enums import TaskType

from .support import automl, linear_frame

N = 60


def _frame(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    return linear_frame(n=N, seed=seed, noise=0.3)


@pytest.mark.parametrize(
    ("make_y", "task", "metric"),
    [
        (lambda s: s, "binary", "roc_auc"),
        (lambda s: np.where(s == 1, "spam", "ham"), "binary", "roc_auc"),
        (lambda s: s.astype(bool), "binary", "roc_auc"),
        (lambda s: np.arange(N) % 3 + 10 * s, "multiclass", "log_loss"),
        (lambda s: np.array(["a", "b", "c", "d"])[np.arange(N) % 4], "multiclass", "log_loss"),
        (lambda s: s + np.linspace(0, 1, N), "regression", "rmse"),
        (lambda s: np.arange(N) * 3 + s, "regression", "rmse"),  # integers, many values
    ],
    ids=["ints", "strings", "bools", "few-ints", "string-classes", "floats", "many-ints"],
)
def test_task_and_default_metric_are_inferred(make_y: Any, task: str, metric: str) -> None:
    X, y = _frame()
    model = automl().fit(X, make_y(y))
    assert model.task_ is TaskType(task)
    assert model.metric_ == metric
    assert model.leaderboard_.attrs["metric"] == metric


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["cat", "dog"], dtype=object),
        np.array([3, 7]),
        np.array([False, True]),
        np.array([-1.5, 2.0]),
        np.array(["low", "mid", "high"], dtype=object),
    ],
    ids=["str", "int", "bool", "float", "three-str"],
)
def test_classes_keep_the_original_labels_and_predict_returns_them(labels: np.ndarray) -> None:
    X, y = _frame()
    codes = y if len(labels) == 2 else (X["a"].rank(pct=True) * 2.999).astype(int).to_numpy()
    target = labels[codes]
    model = automl(task="binary" if len(labels) == 2 else "auto").fit(X, target)
    np.testing.assert_array_equal(model.classes_, np.sort(labels))
    pred = model.predict(X)
    assert pred.dtype == target.dtype
    assert set(pred.tolist()) <= set(labels.tolist())
    assert np.mean(pred == target) > 0.75
    report = model.evaluate(X, pd.Series(target))
    assert report["confusion_matrix"]["labels"] == np.sort(labels).tolist()


def test_the_task_can_be_forced() -> None:
    X, y = _frame()
    model = automl(task="regression").fit(X, y)
    assert model.task_ is TaskType.regression
    assert model.classes_ is None
    assert model.predict(X).dtype.kind == "f"
    model = automl(task="multiclass").fit(X, y)
    assert model.task_ is TaskType.multiclass
    assert model.metric_ == "log_loss"


def test_a_one_column_frame_is_a_target() -> None:
    X, y = _frame()
    model = automl().fit(X, pd.DataFrame({"label": y}))
    np.testing.assert_array_equal(model.classes_, [0, 1])
    model = automl().fit(X, y.reshape(-1, 1))
    assert model.task_ is TaskType.binary


@pytest.mark.parametrize("name", ["accuracy", "balanced_accuracy", "f1", "brier", "log_loss"])
def test_a_named_metric_is_optimised_and_reported(name: str) -> None:
    X, y = _frame()
    model = automl(metric=name).fit(X, y)
    assert model.metric_ == name
    ok = model.leaderboard_[model.leaderboard_["status"] == "ok"]
    scores = ok["score"].to_numpy()
    # Best first: descending for scores, ascending for losses.
    expected = np.sort(scores) if name in ("brier", "log_loss") else np.sort(scores)[::-1]
    np.testing.assert_allclose(scores, expected)


# --- the metric implementations against scikit-learn --------------------------------------


def _probabilities(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    p = rng.random((n, k)) ** 2
    p[rng.random(n) < 0.2] = 1.0  # ties
    return p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("seed", [0, 1])
def test_binary_metrics_match_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    p = _probabilities(rng, 300, 2)
    labels = p.argmax(axis=1)
    expected = {
        "roc_auc": skm.roc_auc_score(y, p[:, 1]),
        "log_loss": skm.log_loss(y, p),
        "accuracy": skm.accuracy_score(y, labels),
        "balanced_accuracy": skm.balanced_accuracy_score(y, labels),
        "f1": skm.f1_score(y, labels),
        "brier": skm.brier_score_loss(y, p[:, 1]),
    }
    for name, value in expected.items():
        assert METRICS[name].value(y, p) == pytest.approx(value, rel=1e-9), name


def test_multiclass_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    p = _probabilities(rng, 400, 4)
    labels = p.argmax(axis=1)
    expected = {
        "roc_auc": skm.roc_auc_score(y, p, multi_class="ovr", average="macro"),
        "log_loss": skm.log_loss(y, p),
        "accuracy": skm.accuracy_score(y, labels),
        "balanced_accuracy": skm.balanced_accuracy_score(y, labels),
        "f1": skm.f1_score(y, labels, average="macro"),
    }
    for name, value in expected.items():
        assert METRICS[name].value(y, p) == pytest.approx(value, rel=1e-9), name


def test_regression_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    p = y + rng.normal(scale=0.5, size=200)
    assert METRICS["rmse"].value(y, p) == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    assert METRICS["mae"].value(y, p) == pytest.approx(skm.mean_absolute_error(y, p))
    assert METRICS["r2"].value(y, p) == pytest.approx(skm.r2_score(y, p))


def test_scores_are_oriented_so_greater_is_better() -> None:
    y = np.array([0, 1, 1, 0])
    good = np.array([[0.9, 0.1], [0.2, 0.8], [0.1, 0.9], [0.7, 0.3]])
    bad = good[:, ::-1]
    for metric in METRICS.values():
        if TaskType.binary in metric.tasks:
            assert metric.score(y, good) > metric.score(y, bad), metric.name
    assert METRICS["rmse"].score(np.zeros(3), np.zeros(3)) > METRICS["rmse"].score(
        np.zeros(3), np.ones(3)
    )


def test_a_fold_missing_a_class_still_gets_an_auc() -> None:
    y = np.array([0, 0, 2, 2])
    p = np.array([[0.8, 0.1, 0.1], [0.6, 0.2, 0.2], [0.1, 0.1, 0.8], [0.2, 0.2, 0.6]])
    assert METRICS["roc_auc"].value(y, p) == pytest.approx(1.0)


def test_auc_ranks_ties_as_scipy_does() -> None:
    from scipy.stats import rankdata

    from loopml.automl.metrics import _average_ranks

    rng = np.random.default_rng(0)
    for values in (rng.normal(size=300), rng.integers(0, 7, 300).astype(float), np.ones(5)):
        np.testing.assert_array_equal(_average_ranks(values), rankdata(values))
    y = rng.integers(0, 2, 200)
    tied = np.column_stack([np.zeros(200), rng.integers(0, 3, 200) / 2])
    assert METRICS["roc_auc"].value(y, tied) == pytest.approx(skm.roc_auc_score(y, tied[:, 1]))
