"""scikit-learn learners: forests, linear models, nearest neighbours, and the prior.

Forests are stored with skops and loaded only when every type in the file is a
scikit-learn or numpy type; linear and neighbour models are stored as plain arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

from loopml.automl import arrays
from loopml.automl.learners.base import FitContext, Learner, min_leaf, proba_columns
from loopml.core.enums import TaskType
from loopml.core.errors import IntegrityError

# Beyond skops' own safe defaults, a forest file needs exactly this type. A prefix such
# as "builtins." would let a crafted file name builtins.eval and run it on load.
_TRUSTED_TYPES = frozenset({"sklearn.tree._tree.Tree"})
_CHUNK = 50  # forests grow this many trees between deadline checks
_TREES = 200
_ROWS_PER_LEAF = 5000


class SklearnModel:
    """A fitted scikit-learn estimator, stored with skops."""

    def __init__(self, estimator: Any, n_classes: int) -> None:
        self.estimator = estimator
        self.n_classes = n_classes

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.n_classes:
            proba = self.estimator.predict_proba(X)
            return proba_columns(proba, self.n_classes, self.estimator.classes_)
        return self.estimator.predict(X)

    def dump(self) -> tuple[dict[str, bytes], dict[str, Any]]:
        import skops.io as sio  # imported when needed: it costs seconds at import

        return {"model.skops": sio.dumps(self.estimator)}, {"n_classes": self.n_classes}

    @classmethod
    def load(cls, files: dict[str, bytes], meta: dict[str, Any]) -> SklearnModel:
        import skops.io as sio

        data = files["model.skops"]
        untrusted = sio.get_untrusted_types(data=data)
        refused = [t for t in untrusted if t not in _TRUSTED_TYPES]
        if refused:
            raise IntegrityError(f"model file holds types that are not trusted: {refused}")
        estimator = sio.loads(data, trusted=untrusted)
        return cls(estimator, int(meta["n_classes"]))


class _Forest(Learner):
    family = "native"
    classifier: Any = None
    regressor: Any = None

    def portfolio(self, task: TaskType, n_rows: int) -> list[dict[str, Any]]:
        # Leaves of one row on big data make huge, slow forests for little gain.
        leaf = max(1, n_rows // _ROWS_PER_LEAF)
        return [{"max_features": "sqrt", "min_samples_leaf": leaf, "n_estimators": _TREES}]

    def space(self, trial: optuna.Trial, task: TaskType, n_rows: int) -> dict[str, Any]:
        return {
            "max_features": self.suggest(trial, "max_features", ["sqrt", "log2", 0.5, 1.0]),
            "min_samples_leaf": self.suggest(
                trial, "min_samples_leaf", 1, max(2, min_leaf(n_rows, 20)), log=True
            ),
            "n_estimators": _TREES,
        }

    def full_params(self, params: dict[str, Any], fold_models: list[Any]) -> dict[str, Any]:
        # As many trees as the folds grew before their deadline: a refit of all of them
        # would take longer than the search kept time for.
        grown = max((len(m.estimator.estimators_) for m in fold_models), default=_TREES)
        return {**params, "n_estimators": min(int(params.get("n_estimators", _TREES)), grown)}

    def fit(self, X, y, X_val, y_val, params, ctx: FitContext) -> SklearnModel:
        kind = self.classifier if ctx.n_classes else self.regressor
        total = int(params.get("n_estimators", _TREES))
        forest = kind(
            **{**params, "n_estimators": min(_CHUNK, total)},
            n_jobs=ctx.threads(X),
            random_state=ctx.seed,
            warm_start=True,
        )
        forest.fit(X, y)
        while forest.n_estimators < total and ctx.time_left() > 0:
            forest.n_estimators = min(total, forest.n_estimators + _CHUNK)
            forest.fit(X, y)
        forest.set_params(n_jobs=1, warm_start=False)
        return SklearnModel(forest, ctx.n_classes)

    def load(self, files: dict[str, bytes], meta: dict[str, Any]) -> SklearnModel:
        return SklearnModel.load(files, meta)


class ExtraTreesLearner(_Forest):
    name = "extra_trees"
    cost = 1.0
    classifier = ExtraTreesClassifier
    regressor = ExtraTreesRegressor


class RandomForestLearner(_Forest):
    name = "random_forest"
    cost = 2.5  # usually dominated by extra trees at the same cost: tried later
    classifier = RandomForestClassifier
    regressor = RandomForestRegressor


class LinearModel:
    """Logistic or ridge regression kept as coefficients: prediction is one matmul.

    Classifiers keep one score row per class (softmax), so a binary logistic model is
    stored as rows ``[0, w]``.
    """

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, n_classes: int) -> None:
        self.coef = np.atleast_2d(coef)
        self.intercept = np.atleast_1d(intercept)
        self.n_classes = n_classes

    def predict(self, X: np.ndarray) -> np.ndarray:
        z = X @ self.coef.T + self.intercept
        if not self.n_classes:
            return z[:, 0]
        e = np.exp(z - z.max(axis=1, keepdims=True))  # scipy's softmax costs more on a row
        return e / e.sum(axis=1, keepdims=True)

    def dump(self) -> tuple[dict[str, bytes], dict[str, Any]]:
        blob = arrays.to_bytes({"coef": self.coef, "intercept": self.intercept})
        return {"linear.npz": blob}, {"n_classes": self.n_classes}


class LinearLearner(Learner):
    """L2-regularised logistic regression or ridge regression on the dense view."""

    name = "linear"
    family = "dense"
    cost = 0.3

    def portfolio(self, task: TaskType, n_rows: int) -> list[dict[str, Any]]:
        return []  # its default (C=1) always runs as the linear baseline

    def space(self, trial: optuna.Trial, task: TaskType, n_rows: int) -> dict[str, Any]:
        return {"C": self.suggest(trial, "C", 1e-3, 1e3, log=True)}

    def fit(self, X, y, X_val, y_val, params, ctx: FitContext) -> LinearModel:
        if not ctx.n_classes:
            ridge = Ridge(alpha=1.0 / params["C"]).fit(X, y)
            return LinearModel(ridge.coef_, np.array([ridge.intercept_]), 0)
        # One score row per class; classes a training fold lacks get -inf-like scores.
        coef = np.zeros((ctx.n_classes, X.shape[1]))
        intercept = np.full(ctx.n_classes, -1e9)
        present = np.unique(y)
        intercept[present] = 0.0
        if len(present) >= 2:
            logit = LogisticRegression(C=params["C"], max_iter=1000).fit(X, y)
            rows = present if len(present) > 2 else present[1:]
            coef[rows] = logit.coef_
            intercept[rows] = logit.intercept_
        return LinearModel(coef, intercept, ctx.n_classes)

    def load(self, files: dict[str, bytes], meta: dict[str, Any]) -> LinearModel:
        data = arrays.from_bytes(files["linear.npz"])
        return LinearModel(data["coef"], data["intercept"], int(meta["n_classes"]))


class NeighboursModel:
    """k nearest neighbours; stored as its training rows and refitted on load."""

    def __init__(self, X: np.ndarray, y: np.ndarray, params: dict[str, Any], n_classes: int):
        self.X, self.y, self.params, self.n_classes = X, y, params, n_classes
        k = min(int(params["n_neighbors"]), len(X))
        kind = KNeighborsClassifier if n_classes else KNeighborsRegressor
        self.estimator = kind(n_neighbors=k, weights=params["weights"]).fit(X, y)

    def predict(self, X: np.ndarray) -> np.ndarray:
        if not self.n_classes:
            return self.estimator.predict(X)
        out = np.zeros((len(X), self.n_classes))
        out[:, self.estimator.classes_] = self.estimator.predict_proba(X)
        return out

    def dump(self) -> tuple[dict[str, bytes], dict[str, Any]]:
        blob = arrays.to_bytes({"X": self.X, "y": self.y})
        return {"knn.npz": blob}, {"n_classes": self.n_classes, "params": self.params}


class NeighboursLearner(Learner):
    name = "knn"
    family = "dense"
    cost = 0.5

    def portfolio(self, task: TaskType, n_rows: int) -> list[dict[str, Any]]:
        return [{"n_neighbors": 10, "weights": "distance"}]

    def space(self, trial: optuna.Trial, task: TaskType, n_rows: int) -> dict[str, Any]:
        return {
            "n_neighbors": self.suggest(trial, "n_neighbors", 1, max(2, min(100, n_rows // 4))),
            "weights": self.suggest(trial, "weights", ["uniform", "distance"]),
        }

    def fit(self, X, y, X_val, y_val, params, ctx: FitContext) -> NeighboursModel:
        return NeighboursModel(X, y, params, ctx.n_classes)

    def load(self, files: dict[str, bytes], meta: dict[str, Any]) -> NeighboursModel:
        data = arrays.from_bytes(files["knn.npz"])
        return NeighboursModel(data["X"], data["y"], dict(meta["params"]), int(meta["n_classes"]))


class PriorModel:
    """Predicts the training class frequencies, or the training mean."""

    def __init__(self, value: np.ndarray, n_classes: int) -> None:
        self.value = np.asarray(value, dtype=np.float64)
        self.n_classes = n_classes

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.n_classes:
            return np.tile(self.value, (len(X), 1))
        return np.full(len(X), float(self.value[0]))

    def dump(self) -> tuple[dict[str, bytes], dict[str, Any]]:
        return {}, {"n_classes": self.n_classes, "value": self.value.tolist()}


class PriorLearner(Learner):
    """The majority/mean baseline every leaderboard carries."""

    name = "prior"
    family = "dense"
    cost = 0.01

    def portfolio(self, task: TaskType, n_rows: int) -> list[dict[str, Any]]:
        return [{}]

    def space(self, trial: optuna.Trial, task: TaskType, n_rows: int) -> dict[str, Any]:
        return {}

    def fit(self, X, y, X_val, y_val, params, ctx: FitContext) -> PriorModel:
        if ctx.n_classes:
            value = np.bincount(y, minlength=ctx.n_classes) / len(y)
        else:
            value = np.array([float(np.mean(y))])
        return PriorModel(value, ctx.n_classes)

    def load(self, files: dict[str, bytes], meta: dict[str, Any]) -> PriorModel:
        return PriorModel(np.array(meta["value"]), int(meta["n_classes"]))
