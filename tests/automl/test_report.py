"""The evaluation report: metrics with intervals, curves, importance, slices, robustness."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_iris

from loopml.automl import AutoML
from loopml.core.errors import InvalidInput

from .support import automl

N_TRAIN = 450


def _sliced(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """``signal`` decides the label, except in segment D, whose labels are coin flips."""
    rng = np.random.default_rng(seed)
    segment = rng.choice(["A", "B", "C", "D"], n)
    signal = rng.normal(size=n)
    y = (signal > 0).astype(int)
    broken = segment == "D"
    y[broken] = rng.integers(0, 2, broken.sum())
    frame = pd.DataFrame({"signal": signal, "noise": rng.normal(size=n), "segment": segment})
    return frame, y


@pytest.fixture(scope="module")
def fitted() -> tuple[AutoML, pd.DataFrame, np.ndarray]:
    X, y = _sliced()
    model = automl(learners=["lightgbm"], report=True, time_budget=30)
    model.fit(X.iloc[:N_TRAIN], y[:N_TRAIN])
    return model, X, y


def test_metrics_come_with_intervals_around_them(
    fitted: tuple[AutoML, pd.DataFrame, np.ndarray],
) -> None:
    report = fitted[0].report_
    assert report["task"] == "binary"
    assert report["n_rows"] == N_TRAIN
    assert "cross-validation" in report["evaluation"]
    metrics = report["metrics"]
    assert set(metrics) == {"roc_auc", "log_loss", "accuracy", "balanced_accuracy", "f1", "brier"}
    for name, m in metrics.items():
        assert m["ci_low"] <= m["value"] <= m["ci_high"], name
        assert m["ci_low"] < m["ci_high"], name
    board = fitted[0].leaderboard_.set_index("model")
    assert metrics["roc_auc"]["value"] == pytest.approx(board.loc["ensemble", "score"])


def test_the_confusion_matrix_counts_every_row(
    fitted: tuple[AutoML, pd.DataFrame, np.ndarray],
) -> None:
    model, _, y = fitted
    confusion = model.report_["confusion_matrix"]
    assert confusion["labels"] == [0, 1]
    matrix = np.array(confusion["matrix"])
    assert matrix.shape == (2, 2)
    assert matrix.sum() == N_TRAIN
    assert matrix.sum(axis=1).tolist() == np.bincount(y[:N_TRAIN]).tolist()  # rows: truth


def test_binary_curves_are_present(fitted: tuple[AutoML, pd.DataFrame, np.ndarray]) -> None:
    report = fitted[0].report_
    roc = report["roc"]
    assert roc["fpr"][0] == 0 and roc["fpr"][-1] == 1
    assert roc["auc"] == pytest.approx(report["metrics"]["roc_auc"]["value"])
    pr = report["precision_recall"]
    assert len(pr["precision"]) == len(pr["recall"]) > 1
    assert 0 < pr["average_precision"] <= 1
    calibration = report["calibration"]
    assert calibration["points"]
    assert sum(p["rows"] for p in calibration["points"]) == N_TRAIN
    assert 0 <= calibration["expected_calibration_error"] < 0.2
    assert report["confidence"][0]["coverage"] == pytest.approx(1.0)


def test_permutation_importance_ranks_signal_above_noise(
    fitted: tuple[AutoML, pd.DataFrame, np.ndarray],
) -> None:
    importance = fitted[0].report_["permutation_importance"]
    assert importance["metric"] == "roc_auc"
    by_name = {f["feature"]: f["importance"] for f in importance["features"]}
    assert importance["features"][0]["feature"] == "signal"
    assert by_name["signal"] > 0.2
    assert by_name["noise"] < 0.05
    assert by_name["signal"] > 10 * max(by_name["noise"], 1e-3)


def test_the_weakest_slice_is_the_broken_segment(
    fitted: tuple[AutoML, pd.DataFrame, np.ndarray],
) -> None:
    weakest = fitted[0].report_["weakest_slice"]
    assert weakest["feature"] == "segment"
    assert weakest["slice"] == "D"
    assert weakest["much_worse"] is True
    assert weakest["error"] > 0.3 > weakest["overall_error"]


def test_robustness_speed_and_size_are_measured(
    fitted: tuple[AutoML, pd.DataFrame, np.ndarray],
) -> None:
    model = fitted[0]
    report = model.report_
    robustness = report["robustness"]
    assert robustness["rows"] == N_TRAIN
    assert 0 <= robustness["changed_share"] < 0.5
    assert robustness["clean"] > 0.5 and robustness["noisy"] > 0.5
    assert report["prediction_seconds_per_1000_rows"] > 0
    assert report["model_size_bytes"] > 0
    assert report["model_size_bytes"] == model.model_size_
    assert report["baselines"]["beats_baselines"] is model.beats_baselines_


def test_evaluate_on_held_out_rows(fitted: tuple[AutoML, pd.DataFrame, np.ndarray]) -> None:
    model, X, y = fitted
    held_out = model.evaluate(X.iloc[N_TRAIN:], y[N_TRAIN:])
    assert held_out["evaluation"] == "held-out data"
    assert held_out["n_rows"] == len(X) - N_TRAIN
    auc = held_out["metrics"]["roc_auc"]
    assert auc["ci_low"] <= auc["value"] <= auc["ci_high"]
    assert auc["value"] > 0.8
    assert np.array(held_out["confusion_matrix"]["matrix"]).sum() == len(X) - N_TRAIN
    assert held_out["weakest_slice"]["slice"] == "D"


def test_evaluate_with_an_unseen_class_is_invalid_input(
    fitted: tuple[AutoML, pd.DataFrame, np.ndarray],
) -> None:
    model, X, y = fitted
    labels: list[Any] = y[N_TRAIN:].tolist()
    labels[0] = 2
    with pytest.raises(InvalidInput, match="never saw") as info:
        model.evaluate(X.iloc[N_TRAIN:], labels)
    assert info.value.field == "y"


def test_a_regression_report_has_residuals_and_interval_metrics() -> None:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = automl(report=True).fit(X, y)
    report = model.report_
    assert set(report["metrics"]) == {"rmse", "mae", "r2"}
    for name, m in report["metrics"].items():
        assert m["ci_low"] <= m["value"] <= m["ci_high"], name
    assert "confusion_matrix" not in report and "roc" not in report
    residuals = report["residuals"]
    assert len(residuals["predicted"]) == len(residuals["residual"]) > 10
    assert report["robustness"]["mean_change"] >= 0
    assert report["permutation_importance"]["features"][0]["importance"] > 0


def test_a_multiclass_report_calibrates_confidence() -> None:
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = automl(report=True).fit(X, y)
    report = model.report_
    assert np.array(report["confusion_matrix"]["matrix"]).sum() == len(X)
    assert report["calibration"]["observed_is"] == "accuracy"
    assert "roc" not in report
    assert report["threshold"] is None


def test_no_report_when_asked_for_none() -> None:
    X, y = _sliced(n=60)
    model = automl(report=False).fit(X, y)
    assert model.report_ is None
    assert model.model_size_ > 0


def test_the_html_page_shows_the_binary_plots_and_the_findings(
    fitted: tuple[AutoML, pd.DataFrame, np.ndarray],
) -> None:
    from loopml.automl.report_html import render

    model, _, _ = fitted
    page = render(model.report_, model.leaderboard_.to_dict(orient="records"), "a <test>")
    assert "<title>a &lt;test&gt;</title>" in page  # escaped, never markup
    for title in (
        "ROC curve",
        "precision-recall",
        "calibration",
        "confusion matrix",
        "coverage vs accuracy",
        "permutation importance",
        "weakest slice",
    ):
        assert title in page, title
    assert page.count("<svg") == 6


def test_the_html_page_of_a_regression_shows_residuals() -> None:
    from sklearn.datasets import load_diabetes

    from loopml.automl.report_html import render

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = automl(learners=["linear"], report=True).fit(X, y)
    page = render(model.report_, model.leaderboard_.to_dict(orient="records"), "diabetes")
    assert "residuals" in page and "ROC curve" not in page
    assert "rmse" in page


def test_the_html_page_sets_frozen_test_scores_beside_the_cross_validated_ones(
    fitted: tuple[AutoML, pd.DataFrame, np.ndarray],
) -> None:
    from loopml.automl.report_html import render

    model, X, y = fitted
    report = dict(model.report_ or {})
    assert "frozen test split" not in render(report, [], "no test")
    report["test"] = model.evaluate(X.iloc[:40], y[:40])
    page = render(report, [], "with test")
    assert "frozen test split" in page
    value = report["test"]["metrics"][model.metric_]["value"]
    assert f"{value:.4f}" in page
