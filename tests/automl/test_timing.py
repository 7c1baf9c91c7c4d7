"""Timing predictions: a slow first run is scaled up, quick ones are repeated."""

from __future__ import annotations

import time

import numpy as np

from loopml.automl.cv import _seconds_per_1000
from loopml.automl.timing import Timer


def test_repeats_stop_once_the_runs_add_up_to_the_time_allowed() -> None:
    calls: list[int] = []

    def run(n: int) -> None:
        calls.append(n)
        if n == 1000:
            time.sleep(0.15)

    timer = Timer(probe_rows=100, probe_seconds=0.5, repeats=5, within=0.25)
    assert 0.15 <= timer.seconds_per_1000(run, 1000) < 0.6
    assert calls == [100, 1000, 1000]  # 0.3 s after two runs: no third


def test_typical_keeps_the_median_run_and_best_the_quickest() -> None:
    pauses = iter([0.0, 0.01, 0.1, 0.3] * 2)  # the probe, then three runs

    def run(n: int) -> None:
        time.sleep(next(pauses))

    median = Timer(probe_rows=10, probe_seconds=1.0, repeats=3, typical=True)
    best = Timer(probe_rows=10, probe_seconds=1.0, repeats=3)
    assert 0.1 <= median.seconds_per_1000(run, 1000) < 0.3
    assert 0.01 <= best.seconds_per_1000(run, 1000) < 0.1


class _Counting:
    """A model that records how many rows each prediction is asked for."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, X: np.ndarray) -> np.ndarray:
        self.calls.append(len(X))
        return np.zeros(len(X))


def test_a_trial_timed_on_many_validation_rows_predicts_nothing_more() -> None:
    model = _Counting()
    assert _seconds_per_1000(model, np.zeros((1000, 3)), 0.02) == 0.02  # type: ignore[arg-type]
    assert _seconds_per_1000(model, np.zeros((40, 3)), 0.3) == 7.5  # type: ignore[arg-type]
    assert model.calls == []


def test_a_trial_with_few_validation_rows_is_probed_then_timed_on_1000() -> None:
    model = _Counting()
    _seconds_per_1000(model, np.zeros((50, 3)), 0.001)  # type: ignore[arg-type]
    assert model.calls == [100, 1000]
