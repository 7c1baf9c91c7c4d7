"""Every registered learner: binary, multiclass and regression, probabilities, save and load."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from loopml.automl import REGISTRY, AutoML
from loopml.automl.columns import parse, plan_columns
from loopml.automl.cv import TrialResult, Workspace, evaluate, make_folds
from loopml.automl.learners import FitContext
from loopml.automl.metrics import get_metric
from loopml.automl.search import BASELINES
from loopml.core.enums import TaskType

from .support import automl

# Image learners (the CNN, a backbone) read pixels, not tables: tests/vision has theirs.
LEARNERS = sorted(n for n, learner in REGISTRY.items() if not learner.images_only)
TASKS = ["binary", "multiclass", "regression"]
N = 60


def _data(task: str) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(1)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=N),
            "b": rng.normal(size=N),
            "colour": rng.choice(["red", "green", "blue"], N),
        }
    )
    signal = X["a"] + 0.5 * (X["colour"] == "red")
    if task == "binary":
        return X, np.where(signal > 0.2, "yes", "no")
    if task == "multiclass":
        return X, pd.qcut(signal, 3, labels=["low", "mid", "high"]).astype(str).to_numpy()
    return X, (2 * signal + 0.1 * rng.normal(size=N)).to_numpy()


def test_the_registry_holds_every_documented_learner() -> None:
    assert set(LEARNERS) == {
        "lightgbm",
        "xgboost",
        "catboost",
        "extra_trees",
        "random_forest",
        "linear",
        "knn",
        "prior",
    }


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", LEARNERS)
def test_each_learner_fits_predicts_and_round_trips(name: str, task: str, tmp_path: Path) -> None:
    X, y = _data(task)
    model = automl(learners=[name], n_folds=2, time_budget=2).fit(X, y)
    searched = model.leaderboard_[~model.leaderboard_["baseline"]]
    row = searched[searched["learner"] == name]
    assert len(row) == 1
    assert row["status"].iloc[0] == "ok", row["error"].iloc[0]
    assert np.isfinite(row["score"].iloc[0])

    pred = model.predict(X)
    if task == "regression":
        assert pred.dtype.kind == "f" and np.isfinite(pred).all()
    else:
        proba = model.predict_proba(X)
        assert proba.shape == (N, len(np.unique(y)))
        assert (proba >= 0).all()
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        assert set(pred) <= set(y)

    model.save(tmp_path / "model.zip")
    loaded = AutoML.load(tmp_path / "model.zip")
    np.testing.assert_array_equal(loaded.predict(X), pred)
    if task != "regression":
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


# --- the learner interface itself (members the ensemble might not pick) ----------------


def _light_params(name: str, task: TaskType) -> dict[str, object]:
    portfolio = REGISTRY[name].portfolio(task, N) or [dict(BASELINES)[name]]
    params = dict(portfolio[0])
    if "n_estimators" in params:
        params["n_estimators"] = 20  # forests: enough trees to check, quick to grow
    return params


@pytest.mark.parametrize("task", [TaskType.binary, TaskType.multiclass, TaskType.regression])
@pytest.mark.parametrize("name", LEARNERS)
def test_learner_models_dump_and_load_to_the_same_predictions(name: str, task: TaskType) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, 4))
    X[:, 3] = rng.integers(0, 3, N)  # a categorical code column for the native learners
    if task is TaskType.regression:
        y, k = X[:, 0] + rng.normal(scale=0.1, size=N), 0
    else:
        k = 2 if task is TaskType.binary else 3
        y = np.digitize(X[:, 0], np.quantile(X[:, 0], np.linspace(0, 1, k + 1)[1:-1]))
    learner = REGISTRY[name]
    ctx = FitContext(task, k, seed=0, n_jobs=1, deadline=time.monotonic() + 60, categorical=[3])
    train, valid = np.arange(40), np.arange(40, N)
    model = learner.fit(X[train], y[train], X[valid], y[valid], _light_params(name, task), ctx)
    pred = model.predict(X[valid])
    if k:
        assert pred.shape == (len(valid), k)
        np.testing.assert_allclose(pred.sum(axis=1), 1.0)
    else:
        assert pred.shape == (len(valid),)
    files, meta = model.dump()
    assert all(isinstance(blob, bytes) for blob in files.values())
    np.testing.assert_array_equal(learner.load(files, meta).predict(X[valid]), pred)
    # The refit on all rows (no validation rows) takes the fold models' round count.
    full = learner.fit(
        X, y, None, None, learner.full_params(_light_params(name, task), [model]), ctx
    )
    assert full.predict(X[:5]).shape[0] == 5


@pytest.mark.parametrize("name", LEARNERS)
def test_a_class_missing_from_the_training_fold_gets_probability_zero(name: str) -> None:
    """A rare class can be absent from a training fold; every learner still predicts
    one column per class (a forest or CatBoost used to fail the whole trial)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, 3))
    y = np.digitize(X[:, 0], [-0.5, 0.5])  # codes 0..2; code 3 exists in the task only
    ctx = FitContext(TaskType.multiclass, 4, seed=0, n_jobs=1, deadline=time.monotonic() + 60)
    params = _light_params(name, TaskType.multiclass)
    model = REGISTRY[name].fit(X[:40], y[:40], X[40:], y[40:], params, ctx)
    proba = model.predict(X[40:])
    assert proba.shape == (N - 40, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (proba[:, 3] < 1e-3).all()
    if name != "prior":
        assert (proba.argmax(axis=1) == y[40:]).mean() > 0.5


def test_threads_are_limited_for_the_libraries_a_fit_calls() -> None:
    from threadpoolctl import threadpool_info

    from loopml.automl.learners import thread_limit

    def blas() -> set[int]:
        return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}

    before = blas()
    with thread_limit(1):
        assert blas() == {1}
    assert blas() == before


@pytest.mark.parametrize("name", ["extra_trees", "random_forest"])
def test_a_forest_refits_with_the_trees_its_folds_grew(name: str) -> None:
    # A fold stopped by its deadline after the first 50 trees: the refit on all rows
    # grows as many, not all 200, which the search kept no time for.
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(N, 3)), rng.integers(0, 2, N)
    learner = REGISTRY[name]
    (params,) = learner.portfolio(TaskType.binary, N)
    stopped = FitContext(TaskType.binary, 2, seed=0, n_jobs=1, deadline=time.monotonic() - 1)
    fold = learner.fit(X, y, None, None, params, stopped)
    assert len(fold.estimator.estimators_) == 50
    assert learner.full_params(params, [fold])["n_estimators"] == 50


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", LEARNERS)
def test_configurations_drawn_from_each_learners_space_fit_and_score(name: str, task: str) -> None:
    """Not only the portfolio: any configuration the search may draw is one the learner
    fits (three drawn at random, names prefixed with the learner's)."""
    X, labels = _data(task)
    kind = TaskType(task)
    y = np.unique(labels, return_inverse=True)[1] if kind is not TaskType.regression else labels
    n_classes = len(np.unique(y)) if kind is not TaskType.regression else 0
    folds = make_folds(y, kind, 3, seed=0)
    ws = Workspace(parse(X, plan_columns(X)), y, folds, kind, n_classes, seed=0)
    metric = get_metric({"binary": "roc_auc", "multiclass": "log_loss"}.get(task, "rmse"), kind)
    learner = REGISTRY[name]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for i in range(3):
        trial = study.ask()
        params = learner.space(trial, kind, N)
        assert all(key.startswith(f"{name}.") for key in trial.params)
        deadline = time.monotonic() + 60
        result = evaluate(TrialResult(i, name, params), learner, ws, metric, 1, deadline)
        assert result.status == "ok", (params, result.error)
        assert np.isfinite(result.score), params
