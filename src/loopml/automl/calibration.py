"""Probabilities made to mean what they say when the metric did not ask for it.

AUC scores how rows are ordered, accuracy and F1 the class picked: an ensemble chosen for
them can order every row right and still say 0.55 where it is sure (a strongly
regularised linear model does). A confidence threshold, a cost matrix's decision and a
person reading a confidence all need probabilities that hold, so a monotone map is
fitted to the out-of-fold predictions: Platt's sigmoid on the logit for two classes, a
temperature for more. Platt's map keeps the order of the rows (AUC); a temperature keeps
each row's likeliest class but not the one-vs-rest orders of AUC over three or more
classes, which therefore get no map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from loopml.automl.metrics import Metric

_EPS = 1e-12
# Binary slopes and inverse temperatures are kept within this range: a fold's few rows
# cannot make a model a hundred times surer or vaguer than it was.
_LIMITS = (0.05, 20.0)


@dataclass(frozen=True)
class Calibration:
    """``p -> sigmoid(slope * logit(p) + intercept)`` for two classes;
    ``p -> softmax(slope * log(p))`` for more (``intercept`` is then 0)."""

    slope: float
    intercept: float = 0.0

    def apply(self, p: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of ``p`` (``n x k``, rows summing to 1)."""
        p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
        if p.shape[1] == 2:
            z = self.slope * np.log(p[:, 1] / p[:, 0]) + self.intercept
            return np.column_stack([expit(-z), expit(z)])  # 1 - expit(z) would round to 0
        z = self.slope * np.log(p)
        z -= z.max(axis=1, keepdims=True)
        out = np.exp(z)
        return out / out.sum(axis=1, keepdims=True)

    def to_state(self) -> dict[str, float]:
        return {"slope": self.slope, "intercept": self.intercept}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> Calibration | None:
        return None if state is None else cls(float(state["slope"]), float(state["intercept"]))


def needed(metric: Metric, n_classes: int) -> bool:
    """Whether an ensemble chosen by ``metric`` gets a map: not for regression, not when
    the metric scores the probabilities themselves (log loss, Brier: what it chose is
    calibrated as far as the folds can tell), and not for AUC over three or more classes."""
    if n_classes < 2 or metric.proper:
        return False
    return n_classes == 2 or metric.name != "roc_auc"


def _targets(y: np.ndarray, k: int) -> np.ndarray:
    """One-hot targets, softened as Platt did (a class of n rows aims at (n + 1) / (n + 2),
    not 1): with them, out-of-fold predictions that separate the classes perfectly do not
    drive the fitted map to certainty."""
    counts = np.bincount(y, minlength=k).astype(np.float64)
    hit = (counts + 1) / (counts + 2)
    t = np.empty((len(y), k))
    t[:] = ((1.0 - hit[y]) / (k - 1))[:, None]
    t[np.arange(len(y)), y] = hit[y]
    return t


def fit(y: np.ndarray, oof: np.ndarray) -> Calibration | None:
    """The map that makes ``oof`` (``n x k`` probabilities of the classes coded ``y``)
    best predict ``y`` in log loss, or None where none does better than ``oof`` as it is.
    Predictions that carry no order are mapped to about the classes' shares."""
    y = np.asarray(y, dtype=np.int64)
    k = oof.shape[1]
    t = _targets(y, k)
    two = k == 2

    def loss(x: np.ndarray) -> float:
        q = np.clip(Calibration(float(x[0]), float(x[1]) if two else 0.0).apply(oof), _EPS, 1)
        return float(-np.mean(np.sum(t * np.log(q), axis=1)))

    start = np.array([1.0, 0.0]) if two else np.array([1.0])
    bounds = [_LIMITS, (-20.0, 20.0)] if two else [_LIMITS]
    if not np.isfinite(loss(start)):
        return None  # missing predictions: nothing to fit
    found = minimize(loss, start, method="L-BFGS-B", bounds=bounds)
    if loss(found.x) >= loss(start):
        return None  # nothing better than the identity was found
    return Calibration(float(found.x[0]), float(found.x[1]) if two else 0.0)
