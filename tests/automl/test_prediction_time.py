"""The kept ensemble is timed as it will serve (after the refit) and made to fit the budget."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.automl import REGISTRY, AutoML, prediction_time
from loopml.automl.cv import TrialResult
from loopml.automl.learners import FitContext
from loopml.automl.learners.sklearn_models import ExtraTreesLearner
from loopml.automl.metrics import get_metric
from loopml.automl.prediction_time import PARTS, SAMPLE_ROWS
from loopml.automl.predictor import Predictor
from loopml.core.enums import TaskType

from .support import automl, xor_frame

ROWS = 240
SLEEP_PER_ROW = 2e-4  # 0.2 s per 1,000 rows


class _Sleepy:
    """A model that takes ``SLEEP_PER_ROW`` seconds a row on top of its own."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def predict(self, X: np.ndarray) -> np.ndarray:
        time.sleep(SLEEP_PER_ROW * len(X))
        return self.inner.predict(X)

    def dump(self) -> Any:
        return self.inner.dump()


class _SlowOnceRefit(ExtraTreesLearner):
    """A forest whose fold models are quick and whose refit on all rows is slow, as a kNN
    that holds every row or a booster given more rounds can be."""

    name = "slow_once_refit"

    def fit(self, X: Any, y: Any, X_val: Any, y_val: Any, params: Any, ctx: FitContext) -> Any:
        model = super().fit(X, y, X_val, y_val, params, ctx)
        return _Sleepy(model) if len(X) == ROWS else model


def test_a_slow_probe_is_scaled_up_without_running_the_whole_sample() -> None:
    calls: list[int] = []

    def slow(n: int) -> None:
        calls.append(n)
        time.sleep(0.01 * n)

    assert PARTS.seconds_per_1000(slow, SAMPLE_ROWS) >= 10.0  # 0.1 s for 10 rows
    assert calls == [10]


def test_a_quick_run_is_timed_on_the_whole_sample() -> None:
    calls: list[int] = []
    assert PARTS.seconds_per_1000(calls.append, SAMPLE_ROWS) < 0.05
    assert calls == [10, SAMPLE_ROWS, SAMPLE_ROWS]


def test_a_smaller_sample_is_scaled_to_1000_rows() -> None:
    """Images are timed on a few rows (their arrays are large): the time is per 1,000."""
    calls: list[int] = []

    def per_row(n: int) -> None:
        calls.append(n)
        time.sleep(2e-4 * n)

    assert 0.2 <= PARTS.seconds_per_1000(per_row, 50) < 2.0  # 0.2 s, not 0.01 s or 4 s
    assert calls == [10, 50, 50]


def test_a_member_slower_once_refitted_is_dropped_to_keep_the_budget(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(REGISTRY, "slow_once_refit", _SlowOnceRefit())
    X, y = xor_frame(n=ROWS)
    settings: dict[str, Any] = {
        "learners": ["slow_once_refit", "linear"],
        "time_budget": 4,
        "max_trials": None,
    }
    unlimited = automl(**settings, prediction_budget=None).fit(X, y)
    # On xor the forest is the member that counts; its fold models fit a 0.1 s budget.
    assert "slow_once_refit" in {m.learner for m in unlimited.predictor_.members}
    encoders: list[Any] = []
    full_encoder = Predictor.full_encoder

    def counted(raw: Any, seed: int) -> Any:
        encoders.append(full_encoder(raw, seed))
        return encoders[-1]

    monkeypatch.setattr(Predictor, "full_encoder", staticmethod(counted))
    limited = automl(**settings, prediction_budget=0.1).fit(X, y)
    # The refit chosen again reuses the encoder of all rows (a text SVD takes seconds).
    assert len(encoders) == 1
    folds = [t for t in limited.trials_ if t["learner"] == "slow_once_refit"]
    assert folds and all(t["predict_seconds_per_1000"] < 0.1 for t in folds)
    assert {m.learner for m in limited.predictor_.members} == {"linear"}
    assert sum(m.weight for m in limited.predictor_.members) == pytest.approx(1.0)
    board = limited.leaderboard_
    ensemble = board[board["model"] == "ensemble"].iloc[0]
    assert 0 < ensemble["predict_seconds_per_1000"] <= 0.1
    assert board.loc[board["learner"] == "slow_once_refit", "ensemble_weight"].eq(0).all()
    assert "prediction_time" in limited.timings_
    # The saved model is the reduced one.
    path = tmp_path / "model.zip"
    limited.save(path)
    loaded = AutoML.load(path)
    assert {m.learner for m in loaded.predictor_.members} == {"linear"}
    np.testing.assert_allclose(loaded.predict_proba(X), limited.predict_proba(X))


def _trial(i: int, oof: list[float], seconds: float) -> TrialResult:
    return TrialResult(
        id=i, learner="linear", params={}, status="ok", score=0.0,
        oof=np.array(oof), predict_seconds_per_1000=seconds,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("shared", "member_seconds", "slower", "kept"),
    [
        (0.001, [0.004, 0.004], None, {0, 1}),  # within the budget: as chosen
        (0.001, [0.02, 0.004], None, {1}),  # the first member is slow once refitted
        (0.02, [0.004, 0.004], None, {0, 1}),  # parsing alone is over: fewer would not help
        # The parts fit (0.009 s) but the whole runs 1.5 times slower: one member stays.
        (0.001, [0.004, 0.004], 1.5, {0}),
    ],
    ids=["within", "slow-member", "slow-parsing", "slow-whole"],
)
def test_what_the_measured_ensemble_keeps(
    monkeypatch: pytest.MonkeyPatch,
    shared: float,
    member_seconds: list[float],
    slower: float | None,
    kept: set,
) -> None:
    """The choice made from measured timings (the timings are given: a test machine's
    clock would make the cases flaky)."""
    y = np.array([0.0, 1.0, 0.0, 1.0])
    # Two members that are each half right; together exactly right.
    candidates = [_trial(0, [0.0, 1.0, 0.5, 0.5], 0.004), _trial(1, [0.5, 0.5, 0.0, 1.0], 0.004)]
    built: list[dict[int, float]] = []

    def assemble(weights: dict[int, float]) -> tuple[Any, Any]:
        built.append(weights)
        return weights, weights

    def measured(refit: dict[int, float], sample: Any) -> prediction_time.Timing:
        parts = [member_seconds[i] for i in refit]
        whole = None if slower is None else slower * (shared + sum(parts))
        return prediction_time.Timing(shared, parts, whole)

    monkeypatch.setattr(prediction_time, "time_predictor", measured)
    weights, _, _, seconds = prediction_time.within_budget(
        assemble,
        pd.DataFrame(),
        candidates,
        {0: 0.5, 1: 0.5},
        y,
        get_metric("rmse", TaskType.regression),
        0.01,
    )
    assert set(weights) == kept
    parts = shared + sum(member_seconds[i] for i in kept)
    assert seconds == pytest.approx(parts * (slower or 1.0))
    assert built[-1] == weights


@pytest.mark.parametrize(
    ("late", "fold_fits", "served"),
    [(False, 10.0, {0}), (True, 10.0, {1}), (True, 0.1, {0})],
    ids=["in-time", "late", "late-but-quick-to-refit"],
)
def test_past_the_fit_budget_only_refitted_members_are_chosen_again(
    monkeypatch: pytest.MonkeyPatch, late: bool, fold_fits: float, served: set[int]
) -> None:
    """Choosing again after the fit's time is up refits nothing slow: the served ensemble
    may then stay over the prediction budget, but the fit ends."""
    y = np.array([0.0, 1.0, 0.0, 1.0])
    # The first is exactly right and fast; the second, chosen first, nearly right and slow
    # once refitted.
    candidates = [_trial(0, [0.0, 1.0, 0.0, 1.0], 0.004), _trial(1, [0.1, 0.9, 0.1, 0.9], 0.004)]
    for c in candidates:  # seconds of five fold fits
        c.fit_seconds, c.fold_scores = fold_fits, [0.0] * 5
    member_seconds = {0: 0.004, 1: 0.05}
    built: list[dict[int, float]] = []

    def assemble(weights: dict[int, float]) -> tuple[Any, Any]:
        built.append(weights)
        return weights, weights

    def measured(refit: dict[int, float], sample: Any) -> prediction_time.Timing:
        return prediction_time.Timing(0.001, [member_seconds[i] for i in refit])

    monkeypatch.setattr(prediction_time, "time_predictor", measured)
    weights, _, _, seconds = prediction_time.within_budget(
        assemble,
        pd.DataFrame(),
        candidates,
        {1: 1.0},
        y,
        get_metric("rmse", TaskType.regression),
        0.01,
        choose_refitted_after=-math.inf if late else math.inf,
    )
    assert set(weights) == served
    assert [set(w) for w in built] == ([{1}] if served == {1} else [{1}, {0}])
    assert seconds == pytest.approx(0.001 + member_seconds[next(iter(served))])


def test_the_whole_predictor_is_timed_as_served(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "slow_once_refit", _SlowOnceRefit())
    X, y = xor_frame(n=ROWS)
    model = automl(learners=["slow_once_refit"], prediction_budget=None).fit(X, y)
    # The refit on all ROWS rows sleeps 0.2 s per 1,000 rows it predicts.
    timing = prediction_time.time_predictor(model.predictor_, X.sample(200, replace=True))
    assert timing.whole is not None and timing.total == timing.whole
    assert timing.whole >= SLEEP_PER_ROW * 1000
    assert timing.members[-1] >= SLEEP_PER_ROW * 1000
    assert timing.scale >= 1.0
