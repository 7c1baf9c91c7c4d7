"""LightGBM: the default workhorse (native categoricals, fast, strong)."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import optuna

from loopml.automl.learners.base import (
    ROUNDS_KEY,
    FitContext,
    Learner,
    min_leaf,
    proba_columns,
    refit_rounds,
    take_rounds,
)
from loopml.core.enums import TaskType

_MAX_ROUNDS = 5000
_PATIENCE = 50


class LightGBMModel:
    def __init__(self, booster: lgb.Booster, n_classes: int) -> None:
        self.booster = booster
        self.n_classes = n_classes

    def predict(self, X: np.ndarray) -> np.ndarray:
        out = np.asarray(self.booster.predict(X, num_threads=1))
        return proba_columns(out, self.n_classes) if self.n_classes else np.asarray(out)

    def dump(self) -> tuple[dict[str, bytes], dict[str, Any]]:
        return {"model.txt": self.booster.model_to_string().encode()}, {"n_classes": self.n_classes}


def _objective(task: TaskType, n_classes: int) -> dict[str, Any]:
    if task is TaskType.binary:
        return {"objective": "binary", "metric": "binary_logloss"}
    if task is TaskType.multiclass:
        return {"objective": "multiclass", "num_class": n_classes, "metric": "multi_logloss"}
    return {"objective": "regression", "metric": "l2"}


class LightGBMLearner(Learner):
    name = "lightgbm"
    family = "native"
    cost = 1.0
    early_stopping = True

    def portfolio(self, task: TaskType, n_rows: int) -> list[dict[str, Any]]:
        leaf = min_leaf(n_rows)
        return [
            {  # LightGBM's own defaults: hard to beat on small data
                "learning_rate": 0.1,
                "num_leaves": 31,
                "min_data_in_leaf": leaf,
                "feature_fraction": 1.0,
                "lambda_l2": 1e-6,
                "extra_trees": False,
                "rounds": 100,
            },
            {
                "learning_rate": 0.03,
                "num_leaves": 128,
                "min_data_in_leaf": min(3, leaf),
                "feature_fraction": 0.9,
                "lambda_l2": 1e-6,
                "extra_trees": False,
                "rounds": 500,
            },
            {
                "learning_rate": 0.05,
                "num_leaves": 31,
                "min_data_in_leaf": leaf,
                "feature_fraction": 0.75,
                "lambda_l2": 1.0,
                "extra_trees": True,
                "rounds": 300,
            },
        ]

    def space(self, trial: optuna.Trial, task: TaskType, n_rows: int) -> dict[str, Any]:
        return {
            "learning_rate": self.suggest(trial, "learning_rate", 0.005, 0.2, log=True),
            "num_leaves": self.suggest(trial, "num_leaves", 4, 256, log=True),
            "min_data_in_leaf": self.suggest(
                trial, "min_data_in_leaf", 1, max(2, min(100, n_rows // 5)), log=True
            ),
            "feature_fraction": self.suggest(trial, "feature_fraction", 0.4, 1.0),
            "lambda_l2": self.suggest(trial, "lambda_l2", 1e-6, 10.0, log=True),
            "extra_trees": self.suggest(trial, "extra_trees", [False, True]),
            "rounds": self.suggest(trial, "rounds", 20, 1000, log=True),
        }

    def full_params(self, params: dict[str, Any], fold_models: list[Any]) -> dict[str, Any]:
        rounds = [m.booster.current_iteration() for m in fold_models]
        return {**params, ROUNDS_KEY: refit_rounds(rounds)}

    def fit(self, X, y, X_val, y_val, params, ctx: FitContext) -> LightGBMModel:
        params, fixed_rounds = take_rounds(params, 100)
        config = {
            **_objective(ctx.task, ctx.n_classes),
            **params,
            "verbosity": -1,
            "seed": ctx.seed,
            "num_threads": ctx.threads(X),
            "deterministic": True,
            "force_col_wise": True,
            "min_data_in_bin": 1 if len(y) < 200 else 3,
            "max_cat_to_onehot": 8,
        }
        train = lgb.Dataset(
            X, y, categorical_feature=ctx.categorical or "auto", free_raw_data=False
        )

        def deadline(env: lgb.callback.CallbackEnv) -> None:
            if ctx.time_left() <= 0:
                raise lgb.callback.EarlyStopException(
                    env.iteration, env.evaluation_result_list or []
                )

        if X_val is None:
            booster = lgb.train(config, train, num_boost_round=fixed_rounds, callbacks=[deadline])
            return LightGBMModel(booster, ctx.n_classes)
        valid = lgb.Dataset(X_val, y_val, reference=train)
        history: dict[str, Any] = {}
        booster = lgb.train(
            config,
            train,
            num_boost_round=_MAX_ROUNDS,
            valid_sets=[valid],
            valid_names=["valid"],
            callbacks=[
                lgb.record_evaluation(history),
                lgb.early_stopping(_PATIENCE, verbose=False),
                deadline,
            ],
        )
        # The deadline callback runs before record_evaluation: stopped at once, no history.
        curves = history.get("valid")
        if not curves:
            return LightGBMModel(booster, ctx.n_classes)
        best = int(np.argmin(next(iter(curves.values())))) + 1
        booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
        return LightGBMModel(booster, ctx.n_classes)

    def load(self, files: dict[str, bytes], meta: dict[str, Any]) -> LightGBMModel:
        booster = lgb.Booster(model_str=files["model.txt"].decode())
        return LightGBMModel(booster, int(meta["n_classes"]))
