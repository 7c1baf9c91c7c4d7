"""Cross-validation: folds, per-fold encodings, and the evaluation of one configuration."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold

from loopml.automl.columns import RawFrame
from loopml.automl.encoding import FoldEncoder
from loopml.automl.learners import FitContext, Learner, Model, thread_limit, timed_predictions
from loopml.automl.metrics import Metric
from loopml.automl.timing import Timer
from loopml.core.enums import TaskType
from loopml.core.errors import InvalidInput

_MIN_ROWS = 6
# Share of a training fold held out to early-stop boosting: stopping on the scored fold
# would pick the round that fits its labels best, and the out-of-fold score would lie.
_STOP_SHARE = 0.2
# Below this many training rows, holding 20% back to early-stop on costs more than it
# saves: boosting then runs the searched number of rounds on every training row.
EARLY_STOP_MIN_ROWS = 5000
# Rows a prediction is timed on: fewer would count per-call overhead (a forest's is tens of
# milliseconds) as per-row cost, and keep fast models out of the ensemble's time budget.
_TIMING_ROWS = 1000
# A validation prediction this slow already dwarfs that overhead: its time is used as it is.
_SLOW_SECONDS = 0.25
# A first timing of 100 rows: a model this slow (1 s per 1,000 rows: a pretrained
# network) stops there; any table model's per-call overhead stays far below it.
_TIMER = Timer(probe_rows=100, probe_seconds=0.1, repeats=1)


def make_folds(
    y: np.ndarray,
    task: TaskType,
    n_folds: int,
    seed: int,
    groups: np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train/validation row indices per fold: stratified for classes, grouped on request."""
    n = len(y)
    if n < _MIN_ROWS:
        raise InvalidInput(f"need at least {_MIN_ROWS} rows to cross-validate, got {n}", field="X")
    k = max(2, min(n_folds, n // 3))
    if groups is not None:
        n_groups = len(np.unique(groups))
        if n_groups < 2:
            raise InvalidInput("grouped validation needs at least two groups", field="groups")
        return list(GroupKFold(n_splits=min(k, n_groups)).split(np.zeros(n), y, groups))
    if task is not TaskType.regression:
        smallest = int(np.bincount(y).min())
        if smallest >= 2:
            splitter = StratifiedKFold(n_splits=min(k, smallest), shuffle=True, random_state=seed)
            return list(splitter.split(np.zeros(n), y))
    return list(KFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(n)))


def stopping_split(y: np.ndarray, task: TaskType, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of a training fold's rows to fit on and to early-stop on.

    Classes are split alike; a class too small to give a row keeps all its rows.
    """
    rng = np.random.default_rng(seed)
    strata = (
        [np.arange(len(y))]
        if task is TaskType.regression
        else [np.flatnonzero(y == c) for c in np.unique(y)]
    )
    stop = np.sort(
        np.concatenate([rng.permutation(s)[: int(_STOP_SHARE * len(s))] for s in strata])
    )
    return np.setdiff1d(np.arange(len(y)), stop), stop.astype(np.int64)


class Workspace:
    """Parsed training data, its folds, and each fold's encoder and encoded views."""

    def __init__(
        self,
        raw: RawFrame,
        y: np.ndarray,
        folds: list[tuple[np.ndarray, np.ndarray]],
        task: TaskType,
        n_classes: int,
        seed: int,
    ) -> None:
        self.raw, self.y, self.folds = raw, y, folds
        self.task, self.n_classes, self.seed = task, n_classes, seed
        self.encoders = [FoldEncoder(seed).fit(raw.take(train)) for train, _ in folds]
        self._views: dict[tuple[int, str], tuple[np.ndarray, np.ndarray, list[int]]] = {}

    @property
    def n_folds(self) -> int:
        return len(self.folds)

    def view(self, fold: int, family: str) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Encoded training rows, validation rows and categorical indices of one fold."""
        key = (fold, family)
        if key not in self._views:
            train, valid = self.folds[fold]
            enc = self.encoders[fold]
            X_tr, cats = enc.transform(self.raw.take(train), family)
            X_va, _ = enc.transform(self.raw.take(valid), family)
            self._views[key] = (X_tr, X_va, cats)
        return self._views[key]


@dataclass
class TrialResult:
    """One evaluated configuration."""

    id: int
    learner: str
    params: dict[str, Any]
    status: str = "ok"  # ok | pruned | failed | skipped
    fold_scores: list[float] = field(default_factory=list)  # metric values, as read
    score: float = float("nan")
    fit_seconds: float = 0.0
    predict_seconds_per_1000: float = float("nan")  # one fold model on encoded rows
    baseline: bool = False
    error: str | None = None
    oof: np.ndarray | None = None
    models: list[Model] | None = None
    truncated_from: int | None = None  # a cut of that trial (see automl.truncation)

    def record(self) -> dict[str, Any]:
        """The JSON line that lets anyone rebuild this candidate."""
        return {
            "id": self.id,
            "learner": self.learner,
            "params": self.params,
            "status": self.status,
            "score": None if np.isnan(self.score) else self.score,
            "fold_scores": [None if not np.isfinite(s) else s for s in self.fold_scores],
            "fit_seconds": round(self.fit_seconds, 4),
            "predict_seconds_per_1000": None
            if np.isnan(self.predict_seconds_per_1000)
            else round(self.predict_seconds_per_1000, 6),
            "baseline": self.baseline,
            "error": self.error,
            **({} if self.truncated_from is None else {"truncated_from": self.truncated_from}),
        }


def _seconds_per_1000(model: Model, X: np.ndarray, seconds: float) -> float:
    """Seconds one fold model takes per 1,000 rows: the ``seconds`` its validation rows
    ``X`` took when they were many or slow, otherwise a timing of ``_TIMING_ROWS`` of
    them (probed first, so that a slow model is not made to predict 1,000 more)."""
    if len(X) >= _TIMING_ROWS or seconds >= _SLOW_SECONDS:
        return seconds * 1000 / len(X)
    rows = X[np.resize(np.arange(len(X)), _TIMING_ROWS)]
    return _TIMER.seconds_per_1000(lambda n: model.predict(rows[:n]), _TIMING_ROWS)


def evaluate(
    trial: TrialResult,
    learner: Learner,
    ws: Workspace,
    metric: Metric,
    n_jobs: int,
    deadline: float,
    on_fold: Callable[[int, float], None] | None = None,
) -> TrialResult:
    """Cross-validate ``trial``'s configuration, filling in scores, OOF and fold models.

    ``on_fold(fold, running_score)`` may raise to stop early (pruning); the exception
    propagates. Each fold gets an equal share of the time left before ``deadline``.
    """
    started = time.monotonic()
    k = ws.n_folds
    oof: np.ndarray | None = None
    models: list[Model] = []
    scores: list[float] = []
    predict_seconds = 0.0
    try:
        for f in range(k):
            X_tr, X_va, cats = ws.view(f, learner.family)
            train, valid = ws.folds[f]
            share = (deadline - time.monotonic()) / (k - f)
            ctx = FitContext(
                task=ws.task,
                n_classes=ws.n_classes,
                seed=ws.seed,
                n_jobs=n_jobs,
                deadline=time.monotonic() + max(share, 0.0),
                categorical=cats,
            )
            y_tr = ws.y[train]
            fit_rows, stop = stopping_split(y_tr, ws.task, ws.seed + f)
            least = learner.early_stop_rows
            least = EARLY_STOP_MIN_ROWS if least is None else least
            with thread_limit(ctx.threads(X_tr)):
                if learner.early_stopping and len(train) >= least and len(stop):
                    model = learner.fit(
                        X_tr[fit_rows], y_tr[fit_rows], X_tr[stop], y_tr[stop], trial.params, ctx
                    )
                else:
                    model = learner.fit(X_tr, y_tr, None, None, trial.params, ctx)
                predicting = time.perf_counter()
                pred = model.predict(X_va)
                predict_seconds = time.perf_counter() - predicting
            if oof is None:
                oof = np.zeros((len(ws.y), *pred.shape[1:]))
            oof[valid] = pred
            models.append(model)
            scores.append(metric.value(ws.y[valid], pred))
            if on_fold is not None:
                oriented = [s if metric.greater_is_better else -s for s in scores]
                on_fold(f, float(np.nanmean(oriented)))
    except optuna.TrialPruned:
        trial.status, trial.fold_scores = "pruned", scores
        trial.fit_seconds = time.monotonic() - started
        raise
    except Exception as exc:  # a learner failing must not end the search
        trial.status, trial.fold_scores = "failed", scores
        trial.error = f"{type(exc).__name__}: {exc}"
        trial.fit_seconds = time.monotonic() - started
        return trial
    trial.fold_scores = scores
    trial.score = metric.value(ws.y, oof) if oof is not None else float("nan")
    trial.oof, trial.models = oof, models
    trial.fit_seconds = time.monotonic() - started
    with thread_limit(ctx.threads(X_tr)), timed_predictions():  # as validation rows were
        trial.predict_seconds_per_1000 = _seconds_per_1000(models[-1], X_va, predict_seconds)
    return trial
