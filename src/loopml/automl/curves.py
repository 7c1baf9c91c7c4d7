"""Plot data: ROC, precision-recall, calibration, confidence coverage, residuals.

Every curve is a small list of points (at most ``_POINTS``), ready for Plotly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm

_POINTS = 101


def _thin(*columns: np.ndarray) -> list[list[float]]:
    n = len(columns[0])
    keep: Any = np.unique(np.linspace(0, n - 1, min(n, _POINTS)).round().astype(int)) if n else []
    return [[float(c[i]) for i in keep] for c in columns]


def roc(y: np.ndarray, p1: np.ndarray) -> dict[str, Any] | None:
    if len(np.unique(y)) < 2:
        return None
    fpr, tpr, thr = skm.roc_curve(y, p1)
    thr = np.clip(thr, 0.0, 1.0)
    fpr_, tpr_, thr_ = _thin(fpr, tpr, thr)
    return {"fpr": fpr_, "tpr": tpr_, "threshold": thr_, "auc": float(skm.roc_auc_score(y, p1))}


def precision_recall(y: np.ndarray, p1: np.ndarray) -> dict[str, Any] | None:
    if len(np.unique(y)) < 2:
        return None
    precision, recall, thr = skm.precision_recall_curve(y, p1)
    p_, r_, t_ = _thin(precision[:-1], recall[:-1], thr)
    return {
        "precision": p_,
        "recall": r_,
        "threshold": t_,
        "average_precision": float(skm.average_precision_score(y, p1)),
    }


def calibration(y: np.ndarray, pred: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Binary: P(positive) against the observed rate. Multiclass: confidence against accuracy."""
    if pred.shape[1] == 2:
        score, hit, kind = pred[:, 1], (y == 1).astype(float), "positive rate"
    else:
        score, hit, kind = pred.max(axis=1), (pred.argmax(axis=1) == y).astype(float), "accuracy"
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(score, edges[1:-1]), 0, bins - 1)
    points = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            points.append(
                {
                    "predicted": float(score[mask].mean()),
                    "observed": float(hit[mask].mean()),
                    "rows": int(mask.sum()),
                }
            )
    ece = sum(p["rows"] * abs(p["predicted"] - p["observed"]) for p in points) / max(len(y), 1)
    return {"observed_is": kind, "points": points, "expected_calibration_error": float(ece)}


def confidence_coverage(y: np.ndarray, pred: np.ndarray) -> list[dict[str, float]]:
    """For each confidence threshold: share of rows answered and their accuracy."""
    confidence = pred.max(axis=1)
    correct = pred.argmax(axis=1) == y
    out = []
    for t in np.round(np.linspace(0.5, 0.99, 50), 3):
        answered = confidence >= t
        out.append(
            {
                "threshold": float(t),
                "coverage": float(answered.mean()),
                "accuracy": float(correct[answered].mean()) if answered.any() else float("nan"),
            }
        )
    return out


def confusion(y: np.ndarray, decided: np.ndarray, n_classes: int) -> list[list[int]]:
    return skm.confusion_matrix(y, decided, labels=list(range(n_classes))).tolist()


def residuals(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    order = np.argsort(pred)
    pred_, resid_ = _thin(pred[order], (y - pred)[order])
    return {"predicted": pred_, "residual": resid_}
