"""From probabilities to decisions: the binary threshold and abstaining."""

from __future__ import annotations

from typing import Any

import numpy as np

from loopml.automl.metrics import Metric
from loopml.core.enums import TaskType
from loopml.core.errors import InvalidInput

_COST_KEYS = ("tp", "fp", "tn", "fn")
_GRID = 199


def parse_cost_matrix(costs: dict[str, float] | None) -> dict[str, float] | None:
    """Check ``{"fp": .., "fn": ..}`` (``tp``/``tn`` optional, default 0)."""
    if costs is None:
        return None
    if not isinstance(costs, dict):
        raise InvalidInput(
            'cost_matrix must be a mapping like {"fp": 1, "fn": 5}', field="cost_matrix"
        )
    unknown = set(costs) - set(_COST_KEYS)
    if unknown:
        raise InvalidInput(
            f"unknown cost_matrix keys {sorted(unknown)}; use fp, fn, tp, tn", field="cost_matrix"
        )
    if "fp" not in costs or "fn" not in costs:
        raise InvalidInput("cost_matrix needs both 'fp' and 'fn'", field="cost_matrix")
    try:
        parsed = {k: float(costs.get(k, 0.0)) for k in _COST_KEYS}
    except (TypeError, ValueError):
        raise InvalidInput("cost_matrix values must be numbers", field="cost_matrix") from None
    if not all(np.isfinite(v) for v in parsed.values()):
        raise InvalidInput("cost_matrix values must be finite numbers", field="cost_matrix")
    if parsed["fp"] <= parsed["tn"] or parsed["fn"] <= parsed["tp"]:
        raise InvalidInput(
            "cost_matrix: an error must cost more than the correct decision", field="cost_matrix"
        )
    return parsed


def expected_cost(
    y: np.ndarray, p1: np.ndarray, threshold: float, costs: dict[str, float]
) -> float:
    """Mean cost per row of deciding "positive" when ``p1 >= threshold``."""
    positive = p1 >= threshold
    tp = np.sum(positive & (y == 1))
    fp = np.sum(positive & (y == 0))
    tn = np.sum(~positive & (y == 0))
    fn = np.sum(~positive & (y == 1))
    total = costs["tp"] * tp + costs["fp"] * fp + costs["tn"] * tn + costs["fn"] * fn
    return float(total / len(y))


def choose_threshold(
    task: TaskType,
    metric: Metric,
    y: np.ndarray,
    oof: np.ndarray,
    costs: dict[str, float] | None,
) -> float | None:
    """Binary tasks: the threshold on P(positive) chosen on out-of-fold predictions.

    With a cost matrix it minimises the expected cost; with a metric that scores hard
    labels (accuracy, F1 ...) it maximises that metric; otherwise it is 0.5.
    """
    if task is not TaskType.binary:
        return None
    if costs is None and not metric.needs_threshold:
        return 0.5
    p1 = oof[:, 1]
    grid = np.unique(np.concatenate([np.linspace(0.005, 0.995, _GRID), [0.5]]))
    if costs is not None:
        values = [-expected_cost(y, p1, t, costs) for t in grid]
    else:
        values = [metric.score(y, np.column_stack([1 - (p1 >= t), p1 >= t])) for t in grid]
    best = np.flatnonzero(np.isclose(values, np.max(values)))
    # Among equally good thresholds take the middle one: the most robust choice.
    return float(grid[best[len(best) // 2]])


def choose(proba: np.ndarray, threshold: float | None) -> tuple[np.ndarray, np.ndarray]:
    """The class code decided per row (the cost threshold for binary tasks, else the
    likeliest class) and the confidence in it, which a cost threshold can make differ
    from the highest probability."""
    if threshold is not None and proba.shape[1] == 2:
        codes = (proba[:, 1] >= threshold).astype(np.int64)
    else:
        codes = proba.argmax(axis=1)
    return codes, proba[np.arange(len(proba)), codes]


def decide(
    proba: np.ndarray,
    classes: np.ndarray,
    threshold: float | None,
    confidence_threshold: float | None,
    fallback: Any,
) -> np.ndarray:
    """Labels from probabilities, abstaining (``fallback``) below the confidence threshold."""
    codes, confidence = choose(proba, threshold)
    labels = classes[codes]
    if confidence_threshold is None:
        return labels
    confident = confidence >= confidence_threshold
    out = labels.astype(object)
    out[~confident] = fallback
    return out
