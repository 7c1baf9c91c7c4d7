"""Greedy ensemble selection over out-of-fold predictions (Caruana et al., 2004)."""

from __future__ import annotations

import numpy as np

from loopml.automl.cv import TrialResult
from loopml.automl.metrics import get_metric
from loopml.automl.search import greedy_ensemble
from loopml.core.enums import TaskType


def _candidate(i: int, positive: np.ndarray, seconds: float = 0.001) -> TrialResult:
    oof = np.column_stack([1 - positive, positive])
    return TrialResult(i, "lightgbm", {}, oof=oof, predict_seconds_per_1000=seconds)


def _halves() -> tuple[np.ndarray, list[TrialResult]]:
    """Two models, each sure and right on its own half of the rows and unsure (0.5) on
    the other; a third that is a little right everywhere."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    first = np.where(np.arange(400) < 200, np.where(y == 1, 0.95, 0.05), 0.5)
    second = np.where(np.arange(400) >= 200, np.where(y == 1, 0.95, 0.05), 0.5)
    weak = np.where(y == 1, 0.6, 0.4)
    return y, [_candidate(0, first), _candidate(1, second), _candidate(2, weak)]


def test_complementary_models_are_mixed_and_score_better_than_either() -> None:
    y, candidates = _halves()
    metric = get_metric("log_loss", TaskType.binary)
    weights = greedy_ensemble(candidates, y, metric)
    assert {0, 1} <= set(weights) and abs(sum(weights.values()) - 1) < 1e-12
    blended = sum(w * np.asarray(candidates[i].oof) for i, w in weights.items())
    best_alone = min(metric.value(y, np.asarray(c.oof)) for c in candidates)
    assert metric.value(y, blended) < best_alone - 0.05


def test_an_ensemble_never_scores_worse_than_its_best_candidate() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    good = np.clip(np.where(y == 1, 0.8, 0.2) + rng.normal(0, 0.05, 300), 0.01, 0.99)
    bad = rng.uniform(0.01, 0.99, 300)  # noise: blending it in only hurts
    candidates = [_candidate(0, bad), _candidate(1, good)]
    metric = get_metric("log_loss", TaskType.binary)
    assert greedy_ensemble(candidates, y, metric) == {1: 1.0}


def test_the_prediction_budget_bounds_the_members_time_added_up() -> None:
    y, candidates = _halves()
    candidates[1].predict_seconds_per_1000 = 0.03  # the two halves together: 0.031 s
    metric = get_metric("log_loss", TaskType.binary)
    assert set(greedy_ensemble(candidates, y, metric, prediction_budget=0.05)) >= {0, 1}
    kept = greedy_ensemble(candidates, y, metric, prediction_budget=0.02)
    assert 1 not in kept
    assert sum(candidates[i].predict_seconds_per_1000 for i in kept) <= 0.02
