"""An ensemble chosen for ranks or labels still says how sure it is, truthfully."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.automl import REGISTRY, AutoML
from loopml.automl.calibration import Calibration, fit
from loopml.automl.columns import parse
from loopml.automl.learners.sklearn_models import LinearLearner
from loopml.automl.metrics import get_metric
from loopml.automl.predictor import Predictor
from loopml.core.enums import TaskType

from .support import linear_frame


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    return get_metric("log_loss", TaskType.multiclass).value(y, p)


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    return get_metric("roc_auc", TaskType.binary).value(y, p)


def test_ordered_but_timid_probabilities_are_made_sure_without_reordering() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    # Right about nine rows in ten, and never saying more than 0.56.
    right = rng.random(400) < 0.9
    p1 = 0.5 + 0.06 * np.where(right == (y == 1), 1, -1) * rng.uniform(0.2, 1, 400)
    oof = np.column_stack([1 - p1, p1])
    calibration = fit(y, oof)
    assert calibration is not None and calibration.slope > 5
    calibrated = calibration.apply(oof)
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    assert _auc(y, calibrated) == pytest.approx(_auc(y, oof))
    assert _log_loss(y, calibrated) < _log_loss(y, oof) - 0.2
    # Sure where it is right: the confidence now reads as the rate of being right.
    confidence = calibrated.max(axis=1)
    assert 0.8 < confidence.mean() < 0.95


def test_probabilities_that_hold_are_left_nearly_as_they_are() -> None:
    rng = np.random.default_rng(1)
    p1 = rng.uniform(0.02, 0.98, 4000)
    y = (rng.random(4000) < p1).astype(int)
    calibration = fit(y, np.column_stack([1 - p1, p1]))
    assert calibration is not None
    assert calibration.slope == pytest.approx(1.0, abs=0.1)
    assert calibration.intercept == pytest.approx(0.0, abs=0.1)


def test_a_timid_multiclass_ensemble_gets_a_temperature_that_keeps_its_classes() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 600)
    sure = np.full((600, 3), 0.05)
    sure[np.arange(600), y] = 0.9
    timid = 0.3 * sure + 0.7 / 3  # the average of a good model and uniform guesses
    calibration = fit(y, timid)
    assert calibration is not None and calibration.slope > 1 and calibration.intercept == 0
    calibrated = calibration.apply(timid)
    assert (calibrated.argmax(axis=1) == timid.argmax(axis=1)).all()
    assert _log_loss(y, calibrated) < _log_loss(y, timid)


def test_predictions_with_no_order_are_mapped_to_the_class_shares() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(500) < 0.2).astype(int)
    p1 = rng.uniform(0.3, 0.9, 500)  # unrelated to y
    calibration = fit(y, np.column_stack([1 - p1, p1]))
    assert calibration is not None
    calibrated = calibration.apply(np.column_stack([1 - p1, p1]))[:, 1]
    assert np.abs(calibrated - y.mean()).max() < 0.1


class _Timid(LinearLearner):
    """Logistic regression whose probability of class 1 is squeezed into
    ``[low, low + 0.1]``, as a strongly regularised model's is: its ranks (and AUC) are
    untouched."""

    def __init__(self, low: float) -> None:
        self.low = low

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        return _TimidModel(super().fit(*args, **kwargs), self.low)

    def load(self, files: dict[str, bytes], meta: dict[str, Any]) -> Any:
        return _TimidModel(super().load(files, meta), self.low)


class _TimidModel:
    def __init__(self, inner: Any, low: float) -> None:
        self.inner, self.low = inner, low

    def predict(self, X: np.ndarray) -> np.ndarray:
        p1 = 0.1 * self.inner.predict(X)[:, 1] + self.low
        return np.column_stack([1 - p1, p1])

    def dump(self) -> Any:
        return self.inner.dump()


@pytest.fixture
def timid(monkeypatch: pytest.MonkeyPatch) -> None:
    # The baseline (a linear model) is timid too: every candidate is.
    monkeypatch.setitem(REGISTRY, "linear", _Timid(0.45))


@pytest.mark.usefixtures("timid")
def test_a_model_chosen_by_auc_serves_confidences_that_hold(tmp_path: Path) -> None:
    X, y = linear_frame(n=400, noise=0.3)
    settings: dict[str, Any] = {
        "learners": ["linear"], "max_trials": 1, "n_jobs": 1, "n_folds": 3,
        "report": False, "confidence_threshold": 0.8,
    }  # fmt: skip
    by_auc = AutoML(metric="roc_auc", **settings).fit(X, y)
    by_loss = AutoML(metric="log_loss", **settings).fit(X, y)
    # Chosen by log loss, the members are as calibrated as the search could make them.
    assert by_loss.predictor_.calibration is None
    assert by_loss.predict_proba(X).max(axis=1).max() < 0.56
    # Chosen by AUC, the same members are calibrated on their out-of-fold predictions.
    proba = by_auc.predict_proba(X)
    assert isinstance(by_auc.predictor_.calibration, Calibration)
    calibration, by_auc.predictor_.calibration = by_auc.predictor_.calibration, None
    timid = by_auc.predict_proba(X)
    by_auc.predictor_.calibration = calibration
    assert _auc(y, proba) == pytest.approx(_auc(y, timid), abs=1e-4)
    assert _log_loss(y, proba) < _log_loss(y, timid) - 0.2
    # A confidence threshold of 0.8 now abstains on the hard rows, not on every row.
    abstained = np.mean(by_auc.predict(X) == "unknown")
    assert np.mean(by_loss.predict(X) == "unknown") == 1.0
    assert 0.0 < abstained < 0.3
    # The calibration is part of the saved model.
    digest = by_auc.save(tmp_path / "model")
    np.testing.assert_allclose(AutoML.load(tmp_path / "model", digest).predict_proba(X), proba)


def test_a_calibrated_report_compares_like_with_like(monkeypatch: pytest.MonkeyPatch) -> None:
    # Below 0.5 everywhere: uncalibrated, every row would be called class 0.
    monkeypatch.setitem(REGISTRY, "linear", _Timid(0.3))
    X, y = linear_frame(n=400, noise=0.3)  # c is noise
    model = AutoML(metric="accuracy", learners=["linear"], max_trials=1, n_jobs=1, n_folds=3).fit(
        X, y
    )
    assert model.predictor_.calibration is not None
    assert model.leaderboard_["score"].iloc[0] == pytest.approx(0.5, abs=0.05)
    report = model.report_
    assert report is not None
    importance = {
        f["feature"]: f["importance"] for f in report["permutation_importance"]["features"]
    }
    # Shuffled rows are scored as served, like the rows they are compared with: the
    # noise column costs nothing, the signal costs much.
    assert abs(importance["c"]) < 0.03
    assert importance["a"] > 0.1
    assert report["robustness"]["changed_share"] < 0.1
    assert report["robustness"]["clean"] > 0.85


def test_extreme_and_missing_predictions() -> None:
    sure = Calibration(20.0).apply(np.array([[0.1, 0.9], [0.9, 0.1]]))
    assert (sure > 0).all() and sure[0, 1] > sure[0, 0]
    oof = np.array([[0.5, 0.5], [np.nan, np.nan], [0.2, 0.8]])
    assert fit(np.array([0, 1, 1]), oof) is None


def test_three_classes_get_a_temperature_for_accuracy_but_none_for_auc() -> None:
    rng = np.random.default_rng(4)
    X = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    y = np.digitize(X["a"] + 0.3 * rng.normal(size=300), [-0.5, 0.5])
    settings: dict[str, Any] = {"learners": ["linear"], "max_trials": 1, "n_jobs": 1}
    by_auc = AutoML(metric="roc_auc", report=False, **settings).fit(X, y)
    assert by_auc.predictor_.calibration is None  # a temperature would reorder classes' rows
    by_accuracy = AutoML(metric="accuracy", report=False, **settings).fit(X, y)
    assert by_accuracy.predictor_.calibration is not None


def test_a_model_saved_before_calibration_loads_without_one(tmp_path: Path) -> None:
    X, y = linear_frame()
    model = AutoML(learners=["linear"], max_trials=1, n_jobs=1, report=False).fit(X, y)
    files = model.predictor_.to_files()[0]
    state = json.loads(files["predictor.json"])
    assert "calibration" in state
    del state["calibration"]
    files["predictor.json"] = json.dumps(state).encode()
    old = Predictor.from_files(files)
    assert old.calibration is None
    model.predictor_.calibration = None
    np.testing.assert_allclose(
        old.predict(parse(X, old.schema)), model.predictor_.predict(parse(X, old.schema))
    )
