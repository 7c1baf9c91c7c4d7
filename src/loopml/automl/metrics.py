"""Metrics the search optimises and the report shows.

Every metric is computed from *predictions in the learner's native space*: class
probabilities (``n x k``) for classification, values for regression. Scores are
"greater is better" internally (``Metric.score``); ``Metric.value`` gives the
number a person expects (an RMSE, not a negative RMSE).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from loopml.core.enums import TaskType
from loopml.core.errors import InvalidInput

_EPS = 1e-15


@dataclass(frozen=True)
class Metric:
    """A named metric.

    Parameters
    ----------
    name : str
        Registry name (``roc_auc``, ``rmse`` ...).
    tasks : frozenset of TaskType
        The tasks it applies to.
    greater_is_better : bool
        Direction of ``value``.
    needs_threshold : bool
        True when the metric scores hard labels, so a decision threshold matters.
    fn : callable
        ``fn(y_true_codes_or_values, predictions) -> float``.
    """

    name: str
    tasks: frozenset[TaskType]
    greater_is_better: bool
    needs_threshold: bool
    fn: Callable[[np.ndarray, np.ndarray], float]

    def value(self, y: np.ndarray, pred: np.ndarray) -> float:
        """The metric as a person reads it."""
        return float(self.fn(y, pred))

    def score(self, y: np.ndarray, pred: np.ndarray) -> float:
        """The metric oriented so that greater is better (what the search maximises)."""
        v = self.value(y, pred)
        return v if self.greater_is_better else -v


def _labels(pred: np.ndarray) -> np.ndarray:
    return np.asarray(pred).argmax(axis=1)


def _roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    if len(np.unique(y)) < 2:
        return float("nan")
    if p.shape[1] == 2:
        return skm.roc_auc_score(y, p[:, 1])
    present = np.unique(y)
    if len(present) < p.shape[1]:
        # A fold can miss a rare class; score the classes that are there.
        sub = p[:, present]
        sub = sub / np.clip(sub.sum(axis=1, keepdims=True), _EPS, None)
        codes = np.searchsorted(present, y)
        if len(present) == 2:
            return skm.roc_auc_score(codes, sub[:, 1])
        return skm.roc_auc_score(codes, sub, multi_class="ovr", average="macro")
    return skm.roc_auc_score(y, p, multi_class="ovr", average="macro")


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, _EPS, 1 - _EPS)
    p = p / p.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


def _f1(y: np.ndarray, p: np.ndarray) -> float:
    average = "binary" if p.shape[1] == 2 else "macro"
    return skm.f1_score(y, _labels(p), average=average, zero_division=0)


_CLS = frozenset({TaskType.binary, TaskType.multiclass})
_REG = frozenset({TaskType.regression})

METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("roc_auc", _CLS, True, False, _roc_auc),
        Metric("log_loss", _CLS, False, False, _log_loss),
        Metric("accuracy", _CLS, True, True, lambda y, p: skm.accuracy_score(y, _labels(p))),
        Metric(
            "balanced_accuracy",
            _CLS,
            True,
            True,
            lambda y, p: skm.balanced_accuracy_score(y, _labels(p)),
        ),
        Metric("f1", _CLS, True, True, _f1),
        Metric(
            "brier",
            frozenset({TaskType.binary}),
            False,
            False,
            lambda y, p: skm.brier_score_loss(y, p[:, 1]),
        ),
        Metric("rmse", _REG, False, False, lambda y, p: float(np.sqrt(np.mean((y - p) ** 2)))),
        Metric("mae", _REG, False, False, lambda y, p: float(np.mean(np.abs(y - p)))),
        Metric("r2", _REG, True, False, lambda y, p: skm.r2_score(y, p)),
    )
}

DEFAULT_METRIC = {
    TaskType.binary: "roc_auc",
    TaskType.multiclass: "log_loss",
    TaskType.regression: "rmse",
}


def get_metric(name: str, task: TaskType) -> Metric:
    """Look a metric up by name (``"auto"`` picks the task's default) and check it fits."""
    if name == "auto":
        name = DEFAULT_METRIC[task]
    metric = METRICS.get(name)
    if metric is None:
        known = ", ".join(sorted(METRICS))
        raise InvalidInput(f"unknown metric {name!r}; choose one of: {known}", field="metric")
    if task not in metric.tasks:
        fits = ", ".join(sorted(m.name for m in METRICS.values() if task in m.tasks))
        raise InvalidInput(
            f"metric {name!r} does not apply to a {task.value} task; use one of: {fits}",
            field="metric",
        )
    return metric
