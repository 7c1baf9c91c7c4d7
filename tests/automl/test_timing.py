"""Timing predictions: a slow first run is scaled up, quick ones are repeated."""

from __future__ import annotations

import time

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
    pauses = iter([0.0, 0.01, 0.05, 0.2] * 2)  # the probe, then three runs

    def run(n: int) -> None:
        time.sleep(next(pauses))

    median = Timer(probe_rows=10, probe_seconds=1.0, repeats=3, typical=True)
    best = Timer(probe_rows=10, probe_seconds=1.0, repeats=3)
    assert 0.05 <= median.seconds_per_1000(run, 1000) < 0.2
    assert 0.01 <= best.seconds_per_1000(run, 1000) < 0.05
