"""LightGBM: the default workhorse (native categoricals, fast, strong)."""

from __future__ import annotations

import ctypes
import threading
import weakref
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
_C_API_DTYPE_FLOAT64 = 1
_C_API_PREDICT_NORMAL = 0


class SingleRow:
    """A booster's single-row predictor (``LGBM_BoosterPredictForMatSingleRowFast``): its
    configuration is parsed once, not on every call as ``Booster.predict`` does. Not
    thread-safe: one caller at a time.

    ``ready`` is False where the LightGBM build lacks the call; callers then use
    ``Booster.predict``.
    """

    def __init__(self, booster: lgb.Booster, handle: ctypes.c_void_p | None) -> None:
        self.ready = handle is not None
        self._handle = handle
        width = booster.num_model_per_iteration()
        self._out = np.empty(width, dtype=np.float64)
        self._out_ptr = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._out_len = ctypes.c_int64()
        self._columns = booster.num_feature()
        self._multiclass = width > 1
        if handle is not None:
            # Freed with this object; the booster is kept alive until then (LightGBM
            # ties the two together).
            weakref.finalize(self, _free_single_row, handle, booster)

    @classmethod
    def of(cls, booster: lgb.Booster, iterations: int | None = None) -> SingleRow:
        """The single-row predictor of ``booster``'s first ``iterations`` rounds (None:
        the rounds ``Booster.predict`` uses by default)."""
        lib = getattr(lgb.basic, "_LIB", None)
        booster_handle = getattr(booster, "_handle", None)
        if lib is None or booster_handle is None:
            return cls(booster, None)
        handle = ctypes.c_void_p()
        code = lib.LGBM_BoosterPredictForMatSingleRowFastInit(
            booster_handle,
            ctypes.c_int(_C_API_PREDICT_NORMAL),
            ctypes.c_int(0),  # start iteration
            ctypes.c_int(iterations or (booster.best_iteration or -1)),
            ctypes.c_int(_C_API_DTYPE_FLOAT64),
            ctypes.c_int32(booster.num_feature()),
            b"num_threads=1",
            ctypes.byref(handle),
        )
        return cls(booster, handle if code == 0 else None)

    def predict(self, row: np.ndarray) -> np.ndarray:
        """What ``Booster.predict`` gives for the one ``row``: shape (1,) or (1, k)."""
        if row.shape != (self._columns,):
            raise ValueError(f"the model reads {self._columns} columns, the row has {row.shape}")
        row = np.ascontiguousarray(row, dtype=np.float64)
        lgb.basic._safe_call(
            lgb.basic._LIB.LGBM_BoosterPredictForMatSingleRowFast(
                self._handle,
                row.ctypes.data_as(ctypes.c_void_p),
                ctypes.byref(self._out_len),
                self._out_ptr,
            )
        )
        out = self._out.copy()
        return out[None, :] if self._multiclass else out


def _free_single_row(handle: ctypes.c_void_p, booster: lgb.Booster) -> None:
    lgb.basic._LIB.LGBM_FastConfigFree(handle)


class LightGBMModel:
    """A booster, or its first ``iterations`` rounds (a view: no trees are copied).

    A booster shared by views predicts every row through ``Booster.predict``: LightGBM
    keeps the rounds to predict with on the booster, each ``Booster.predict`` sets them,
    and the single-row predictor reads them as the last call left them.
    """

    def __init__(self, booster: lgb.Booster, n_classes: int, iterations: int | None = None) -> None:
        self.booster = booster
        self.n_classes = n_classes
        self.iterations = iterations
        self.shared = iterations is not None
        self._single: SingleRow | None = None
        self._single_lock = threading.Lock()

    @property
    def rounds(self) -> int:
        return self.iterations or self.booster.current_iteration()

    def predict(self, X: np.ndarray) -> np.ndarray:
        one = isinstance(X, np.ndarray) and X.ndim == 2 and len(X) == 1
        out = self._predict_one(X) if one and not self.shared else None
        if out is None:
            out = np.asarray(self.booster.predict(X, num_iteration=self.iterations, num_threads=1))
        return proba_columns(out, self.n_classes) if self.n_classes else out

    def _predict_one(self, X: np.ndarray) -> np.ndarray | None:
        """One row through LightGBM's single-row C API (a quarter of ``Booster.predict``'s
        time on one row, which is what a request usually sends); None when another thread
        holds it (its buffers are not shared) or this LightGBM lacks it."""
        if not self._single_lock.acquire(blocking=False):
            return None
        try:
            if self._single is None:
                self._single = SingleRow.of(self.booster, self.iterations)
            return self._single.predict(X[0]) if self._single.ready else None
        finally:
            self._single_lock.release()

    def dump(self) -> tuple[dict[str, bytes], dict[str, Any]]:
        text = self.booster.model_to_string(num_iteration=self.iterations)
        return {"model.txt": text.encode()}, {"n_classes": self.n_classes}


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
        rounds = [m.rounds for m in fold_models]
        return {**params, ROUNDS_KEY: refit_rounds(rounds)}

    def boosted_rounds(self, model: Any) -> int:
        return int(model.rounds)

    def truncated(self, model: Any, rounds: int) -> LightGBMModel:
        model.shared = True
        return LightGBMModel(model.booster, model.n_classes, min(rounds, model.rounds))

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
