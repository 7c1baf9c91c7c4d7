"""Cross-validation: folds (grouped, stratified) and what a learner may see of them."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.automl import cv
from loopml.automl.columns import parse, plan_columns
from loopml.automl.cv import TrialResult, Workspace, evaluate, make_folds
from loopml.automl.learners import REGISTRY, FitContext
from loopml.automl.metrics import get_metric
from loopml.core.enums import TaskType
from loopml.core.errors import InvalidInput

from .support import automl, messy_frame, xor_frame


def _check_partition(folds: list[tuple[np.ndarray, np.ndarray]], n: int) -> None:
    validated = np.concatenate([valid for _, valid in folds])
    assert np.sort(validated).tolist() == list(range(n))  # every row validated once
    for train, valid in folds:
        assert not set(train) & set(valid)
        assert len(train) + len(valid) == n


def test_rows_of_one_group_never_split_across_validation_folds() -> None:
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 23, 200)  # e.g. patients with several visits each
    y = rng.integers(0, 2, 200)
    folds = make_folds(y, TaskType.binary, n_folds=5, seed=0, groups=groups)
    assert len(folds) == 5
    _check_partition(folds, 200)
    for group in np.unique(groups):
        holding = [f for f, (_, valid) in enumerate(folds) if group in set(groups[valid])]
        assert len(holding) == 1, group
        (fold,) = holding
        assert group not in set(groups[folds[fold][0]])


def test_fewer_groups_than_folds_gives_one_fold_per_group() -> None:
    y = np.arange(30) % 2
    groups = np.repeat(["a", "b", "c"], 10)
    folds = make_folds(y, TaskType.binary, n_folds=5, seed=0, groups=groups)
    assert len(folds) == 3
    _check_partition(folds, 30)


def test_class_folds_are_stratified() -> None:
    y = np.array([0] * 90 + [1] * 10)
    folds = make_folds(y, TaskType.binary, n_folds=5, seed=0)
    for _, valid in folds:
        assert y[valid].sum() == 2


def test_folds_depend_on_the_seed_only() -> None:
    y = np.arange(60) % 3
    same = make_folds(y, TaskType.multiclass, 3, seed=4)
    again = make_folds(y, TaskType.multiclass, 3, seed=4)
    other = make_folds(y, TaskType.multiclass, 3, seed=5)
    assert all((a[1] == b[1]).all() for a, b in zip(same, again, strict=True))
    assert any((a[1] != b[1]).any() for a, b in zip(same, other, strict=True))


def test_too_few_rows_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as info:
        make_folds(np.array([0, 1, 0, 1, 0]), TaskType.binary, 5, seed=0)
    assert info.value.field == "X"


def test_a_fit_with_groups_works_end_to_end() -> None:
    X, y = xor_frame(n=120)
    groups = np.arange(120) // 4
    model = automl(learners=["lightgbm"]).fit(X, y, groups=groups)
    assert model.predict(X).shape == (120,)


class _Spy:
    """Wraps a learner and records the rows each fit was given, by their ``row`` value."""

    def __init__(self, name: str) -> None:
        self.inner = REGISTRY[name]
        self.family, self.early_stopping = self.inner.family, self.inner.early_stopping
        self.early_stop_rows = self.inner.early_stop_rows
        self.name = name
        self.calls: list[tuple[set[float], set[float]]] = []

    def fit(self, X: Any, y: Any, X_val: Any, y_val: Any, params: Any, ctx: FitContext) -> Any:
        seen_val = set() if X_val is None else set(X_val[:, 0])
        self.calls.append((set(X[:, 0]), seen_val))
        return self.inner.fit(X, y, X_val, y_val, params, ctx)


@pytest.mark.parametrize("big", [True, False], ids=["early-stopping", "small-data"])
@pytest.mark.parametrize("name", ["lightgbm", "xgboost", "catboost", "extra_trees"])
def test_no_learner_sees_the_rows_it_is_scored_on(
    name: str, big: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Early stopping uses rows held out of the training fold, never the scored fold;
    on small data nothing is held back and boosting runs its searched rounds."""
    if big:  # as if the 90 rows were the many that early stopping needs
        monkeypatch.setattr(cv, "EARLY_STOP_MIN_ROWS", 0)
    rng = np.random.default_rng(0)
    n = 90
    frame = pd.DataFrame({"row": np.arange(n, dtype=float), "x": rng.normal(size=n)})
    y = (frame["x"] > 0).astype(int).to_numpy()
    raw = parse(frame, plan_columns(frame))
    folds = make_folds(y, TaskType.binary, 3, seed=0)
    ws = Workspace(raw, y, folds, TaskType.binary, 2, seed=0)
    spy = _Spy(name)
    params = dict(REGISTRY[name].portfolio(TaskType.binary, n)[0])
    if "n_estimators" in params:
        params["n_estimators"] = 10
    trial = TrialResult(0, name, params)
    metric = get_metric("roc_auc", TaskType.binary)
    evaluate(trial, spy, ws, metric, 1, time.monotonic() + 60)  # type: ignore[arg-type]
    assert trial.status == "ok", trial.error
    assert len(spy.calls) == len(folds)
    for (train, valid), (fitted, stopped) in zip(folds, spy.calls, strict=True):
        scored = set(frame["row"].to_numpy()[valid])
        assert not fitted & scored
        assert not stopped & scored
        assert not fitted & stopped
        assert fitted | stopped == set(frame["row"].to_numpy()[train])
        assert bool(stopped) == (spy.early_stopping and big)


@pytest.mark.parametrize("family", ["native", "dense"])
def test_a_fold_encodes_its_training_rows_the_same_whatever_its_scored_rows_hold(
    family: str,
) -> None:
    """Medians, scaling, vocabularies and the text projection are learned on training
    rows only: rewriting a fold's scored rows changes nothing the fold trains on."""
    X, y = messy_frame(n=150)
    folds = make_folds(y, TaskType.binary, 3, seed=0)
    changed = X.copy()
    valid = folds[0][1]
    changed.loc[valid, "amount"] = 1e6  # far outside the training rows
    changed.loc[valid, "colour"] = "violet"  # a category only the scored rows hold
    changed.loc[valid, "comment"] = "unheard words only here"
    plan = plan_columns(X)
    first = Workspace(parse(X, plan), y, folds, TaskType.binary, 2, seed=0)
    second = Workspace(parse(changed, plan), y, folds, TaskType.binary, 2, seed=0)
    X_tr, X_va, _ = first.view(0, family)
    X_tr2, X_va2, _ = second.view(0, family)
    np.testing.assert_array_equal(X_tr, X_tr2)
    assert not np.array_equal(X_va, X_va2, equal_nan=True)  # the scored rows did change
