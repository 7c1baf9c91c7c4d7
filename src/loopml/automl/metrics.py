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
    proper : bool
        True when it scores the probabilities themselves (a proper scoring rule: log
        loss, Brier), so that what it chooses is calibrated already.
    """

    name: str
    tasks: frozenset[TaskType]
    greater_is_better: bool
    needs_threshold: bool
    fn: Callable[[np.ndarray, np.ndarray], float]
    proper: bool = False

    def value(self, y: np.ndarray, pred: np.ndarray) -> float:
        """The metric as a person reads it."""
        return float(self.fn(y, pred))

    def score(self, y: np.ndarray, pred: np.ndarray) -> float:
        """The metric oriented so that greater is better (what the search maximises)."""
        v = self.value(y, pred)
        return v if self.greater_is_better else -v


def _labels(pred: np.ndarray) -> np.ndarray:
    return np.asarray(pred).argmax(axis=1)


# Metrics are computed in numpy: the search and the ensemble selection call them
# thousands of times, and scikit-learn's input validation costs more than the maths.


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average, as ``scipy.stats.rankdata`` gives them,
    in half its time (its checks cost as much as the sort; the report's bootstrap ranks
    every class of 100 resamples)."""
    order = np.argsort(values)  # ties get their average: the sort need not be stable
    ordered = values[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    ends = np.append(starts[1:], len(values))
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0 or np.isnan(score).any():
        return float("nan")
    ranks = _average_ranks(score)  # ties share the average rank, as in the Mann-Whitney U
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Binary AUC; multiclass: the macro average of one-vs-rest AUCs of present classes."""
    if p.shape[1] == 2:
        return _binary_auc(y == 1, p[:, 1])
    scores = [_binary_auc(y == c, p[:, c]) for c in np.unique(y)]
    scores = [s for s in scores if not np.isnan(s)]
    return float(np.mean(scores)) if scores else float("nan")


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, _EPS, 1 - _EPS)
    p = p / p.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


def _accuracy(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(_labels(p) == y))


def _balanced_accuracy(y: np.ndarray, p: np.ndarray) -> float:
    labels = _labels(p)
    return float(np.mean([np.mean(labels[y == c] == c) for c in np.unique(y)]))


def _f1_of(y: np.ndarray, labels: np.ndarray, c: int) -> float:
    tp = np.sum((labels == c) & (y == c))
    predicted, actual = np.sum(labels == c), np.sum(y == c)
    return float(2 * tp / (predicted + actual)) if predicted + actual else 0.0


def _f1(y: np.ndarray, p: np.ndarray) -> float:
    """Binary: F1 of class 1. Multiclass: macro F1 over the classes present or predicted."""
    labels = _labels(p)
    if p.shape[1] == 2:
        return _f1_of(y, labels, 1)
    return float(np.mean([_f1_of(y, labels, c) for c in np.union1d(y, labels)]))


def _r2(y: np.ndarray, p: np.ndarray) -> float:
    total = float(np.sum((y - np.mean(y)) ** 2))
    residual = float(np.sum((y - p) ** 2))
    return 1.0 - residual / total if total > 0 else float("nan")


_CLS = frozenset({TaskType.binary, TaskType.multiclass})
_REG = frozenset({TaskType.regression})

METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("roc_auc", _CLS, True, False, _roc_auc),
        Metric("log_loss", _CLS, False, False, _log_loss, proper=True),
        Metric("accuracy", _CLS, True, True, _accuracy),
        Metric("balanced_accuracy", _CLS, True, True, _balanced_accuracy),
        Metric("f1", _CLS, True, True, _f1),
        Metric(
            "brier",
            frozenset({TaskType.binary}),
            False,
            False,
            lambda y, p: float(np.mean((p[:, 1] - (y == 1)) ** 2)),
            proper=True,
        ),
        Metric("rmse", _REG, False, False, lambda y, p: float(np.sqrt(np.mean((y - p) ** 2)))),
        Metric("mae", _REG, False, False, lambda y, p: float(np.mean(np.abs(y - p)))),
        Metric("r2", _REG, True, False, _r2),
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
