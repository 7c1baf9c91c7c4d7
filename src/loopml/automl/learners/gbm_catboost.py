"""CatBoost: ordered boosting, strongest on categorical-heavy data, slower to fit."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import catboost
import numpy as np
import optuna
import pandas as pd

from loopml.automl.learners.base import (
    ROUNDS_KEY,
    FitContext,
    Learner,
    proba_columns,
    refit_rounds,
    take_rounds,
)
from loopml.core.enums import TaskType

_MAX_ROUNDS = 3000
_PATIENCE = 50


def _frame(X: np.ndarray, categorical: list[int]) -> pd.DataFrame:
    """CatBoost wants categorical values as integers or strings, never NaN floats."""
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    for i in categorical:
        frame[f"f{i}"] = np.nan_to_num(X[:, i], nan=-1.0).astype(np.int64)
    return frame


class CatBoostModel:
    def __init__(self, model: catboost.CatBoost, n_classes: int, categorical: list[int]) -> None:
        self.model = model
        self.n_classes = n_classes
        self.categorical = categorical

    def predict(self, X: np.ndarray) -> np.ndarray:
        data = catboost.Pool(_frame(X, self.categorical), cat_features=self.categorical)
        kind = "Probability" if self.n_classes else "RawFormulaVal"
        out = self.model.predict(data, prediction_type=kind, thread_count=1)
        if not self.n_classes:
            return np.asarray(out)
        return proba_columns(out, self.n_classes, self.model.classes_)

    def dump(self) -> tuple[dict[str, bytes], dict[str, Any]]:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.cbm")
            self.model.save_model(path, format="cbm")
            with open(path, "rb") as fh:
                blob = fh.read()
        return {"model.cbm": blob}, {"n_classes": self.n_classes, "categorical": self.categorical}


class _Deadline:
    def __init__(self, ctx: FitContext) -> None:
        self.ctx = ctx

    def after_iteration(self, info: Any) -> bool:
        return self.ctx.time_left() > 0  # False stops training


class CatBoostLearner(Learner):
    name = "catboost"
    family = "native"
    cost = 4.0
    early_stopping = True

    def portfolio(self, task: TaskType, n_rows: int) -> list[dict[str, Any]]:
        return [{"learning_rate": 0.08, "depth": 6, "l2_leaf_reg": 3.0, "rounds": 500}]

    def space(self, trial: optuna.Trial, task: TaskType, n_rows: int) -> dict[str, Any]:
        return {
            "learning_rate": self.suggest(trial, "learning_rate", 0.01, 0.3, log=True),
            "depth": self.suggest(trial, "depth", 3, 9),
            "l2_leaf_reg": self.suggest(trial, "l2_leaf_reg", 0.5, 20.0, log=True),
            "rounds": self.suggest(trial, "rounds", 50, 1500, log=True),
        }

    def full_params(self, params: dict[str, Any], fold_models: list[Any]) -> dict[str, Any]:
        rounds = [m.model.tree_count_ for m in fold_models]
        return {**params, ROUNDS_KEY: refit_rounds(rounds)}

    def fit(self, X, y, X_val, y_val, params, ctx: FitContext) -> CatBoostModel:
        params, fixed_rounds = take_rounds(params, 500)
        if ctx.task is TaskType.binary:
            loss = "Logloss"
        elif ctx.task is TaskType.multiclass:
            loss = "MultiClass"
        else:
            loss = "RMSE"
        config = {
            **params,
            "loss_function": loss,
            "iterations": _MAX_ROUNDS,
            "random_seed": ctx.seed,
            "thread_count": ctx.threads(X),
            "allow_writing_files": False,
            "verbose": False,
        }
        cats = ctx.categorical
        train = catboost.Pool(_frame(X, cats), y, cat_features=cats)
        if X_val is None:
            model = catboost.CatBoost({**config, "iterations": fixed_rounds})
            model.fit(train, callbacks=[_Deadline(ctx)])
            return CatBoostModel(model, ctx.n_classes, list(cats))
        model = catboost.CatBoost(
            {**config, "od_type": "Iter", "od_wait": _PATIENCE, "use_best_model": True}
        )
        model.fit(
            train,
            eval_set=catboost.Pool(_frame(X_val, cats), y_val, cat_features=cats),
            callbacks=[_Deadline(ctx)],
        )
        return CatBoostModel(model, ctx.n_classes, list(cats))

    def load(self, files: dict[str, bytes], meta: dict[str, Any]) -> CatBoostModel:
        model = catboost.CatBoost()
        model.load_model(blob=files["model.cbm"])
        return CatBoostModel(model, int(meta["n_classes"]), [int(i) for i in meta["categorical"]])
