"""XGBoost: histogram trees with native categorical splits."""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import xgboost as xgb

from loopml.automl.learners.base import (
    ROUNDS_KEY,
    FitContext,
    Learner,
    proba_columns,
    refit_rounds,
    take_rounds,
)
from loopml.core.enums import TaskType

_MAX_ROUNDS = 5000
_PATIENCE = 50


def _types(n_features: int, categorical: list[int]) -> list[str]:
    cats = set(categorical)
    return ["c" if i in cats else "q" for i in range(n_features)]


class XGBoostModel:
    def __init__(self, booster: xgb.Booster, n_classes: int, feature_types: list[str]) -> None:
        self.booster = booster
        self.n_classes = n_classes
        self.feature_types = feature_types

    def predict(self, X: np.ndarray) -> np.ndarray:
        data = xgb.DMatrix(X, feature_types=self.feature_types, enable_categorical=True, nthread=1)
        out = self.booster.predict(data)
        return proba_columns(out, self.n_classes) if self.n_classes else np.asarray(out)

    def dump(self) -> tuple[dict[str, bytes], dict[str, Any]]:
        raw = bytes(self.booster.save_raw(raw_format="ubj"))
        return {"model.ubj": raw}, {
            "n_classes": self.n_classes,
            "feature_types": self.feature_types,
        }


class _Deadline(xgb.callback.TrainingCallback):
    def __init__(self, ctx: FitContext) -> None:
        super().__init__()
        self.ctx = ctx

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        return self.ctx.time_left() <= 0


class XGBoostLearner(Learner):
    name = "xgboost"
    family = "native"
    cost = 1.5
    early_stopping = True

    def portfolio(self, task: TaskType, n_rows: int) -> list[dict[str, Any]]:
        return [
            {  # XGBoost's own defaults
                "eta": 0.3,
                "max_depth": 6,
                "min_child_weight": 1.0,
                "subsample": 1.0,
                "colsample_bytree": 1.0,
                "lambda": 1.0,
                "rounds": 100,
            },
            {
                "eta": 0.05,
                "max_depth": 8,
                "min_child_weight": 1.0,
                "subsample": 0.8,
                "colsample_bytree": 0.7,
                "lambda": 1.0,
                "rounds": 400,
            },
        ]

    def space(self, trial: optuna.Trial, task: TaskType, n_rows: int) -> dict[str, Any]:
        return {
            "eta": self.suggest(trial, "eta", 0.005, 0.3, log=True),
            "max_depth": self.suggest(trial, "max_depth", 2, 12),
            "min_child_weight": self.suggest(trial, "min_child_weight", 0.01, 20.0, log=True),
            "subsample": self.suggest(trial, "subsample", 0.5, 1.0),
            "colsample_bytree": self.suggest(trial, "colsample_bytree", 0.3, 1.0),
            "lambda": self.suggest(trial, "lambda", 1e-3, 10.0, log=True),
            "rounds": self.suggest(trial, "rounds", 20, 1000, log=True),
        }

    def full_params(self, params: dict[str, Any], fold_models: list[Any]) -> dict[str, Any]:
        rounds = [m.booster.num_boosted_rounds() for m in fold_models]
        return {**params, ROUNDS_KEY: refit_rounds(rounds)}

    def boosted_rounds(self, model: Any) -> int:
        return int(model.booster.num_boosted_rounds())

    def truncated(self, model: Any, rounds: int) -> XGBoostModel:
        rounds = min(rounds, self.boosted_rounds(model))
        return XGBoostModel(model.booster[:rounds], model.n_classes, model.feature_types)

    def fit(self, X, y, X_val, y_val, params, ctx: FitContext) -> XGBoostModel:
        params, fixed_rounds = take_rounds(params, 100)
        types = _types(X.shape[1], ctx.categorical)
        if ctx.task is TaskType.binary:
            objective: dict[str, Any] = {"objective": "binary:logistic", "eval_metric": "logloss"}
        elif ctx.task is TaskType.multiclass:
            objective = {
                "objective": "multi:softprob",
                "num_class": ctx.n_classes,
                "eval_metric": "mlogloss",
            }
        else:
            objective = {"objective": "reg:squarederror", "eval_metric": "rmse"}
        config = {
            **objective,
            **params,
            "tree_method": "hist",
            "max_cat_to_onehot": 8,
            "nthread": ctx.threads(X),
            "seed": ctx.seed,
            "verbosity": 0,
        }
        train = xgb.DMatrix(
            X, y, feature_types=types, enable_categorical=True, nthread=ctx.threads(X)
        )
        if X_val is None:
            booster = xgb.train(
                config,
                train,
                num_boost_round=fixed_rounds,
                callbacks=[_Deadline(ctx)],
                verbose_eval=False,
            )
            return XGBoostModel(booster, ctx.n_classes, types)
        valid = xgb.DMatrix(
            X_val, y_val, feature_types=types, enable_categorical=True, nthread=ctx.threads(X)
        )
        booster = xgb.train(
            config,
            train,
            num_boost_round=_MAX_ROUNDS,
            evals=[(valid, "valid")],
            early_stopping_rounds=_PATIENCE,
            callbacks=[_Deadline(ctx)],
            verbose_eval=False,
        )
        best = getattr(booster, "best_iteration", None)
        if best is not None:
            booster = booster[: best + 1]
        return XGBoostModel(booster, ctx.n_classes, types)

    def load(self, files: dict[str, bytes], meta: dict[str, Any]) -> XGBoostModel:
        booster = xgb.Booster()
        booster.load_model(bytearray(files["model.ubj"]))
        return XGBoostModel(booster, int(meta["n_classes"]), list(meta["feature_types"]))
