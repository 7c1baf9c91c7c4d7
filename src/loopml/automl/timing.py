"""Timing predictions in seconds per 1,000 rows, the one way every part of a fit does it.

A first run on a few rows is timed alone: a model that is slow there (a network) is
scaled up from it rather than made to predict many rows more. Otherwise whole runs are
timed, and the best (or, where a client's view is wanted, the median) is kept.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Timer:
    """How predictions are timed.

    Parameters
    ----------
    probe_rows : int
        Rows of the first, timed run.
    probe_seconds : float
        A first run slower than this gives the answer, scaled to 1,000 rows.
    repeats : int
        Whole runs timed otherwise.
    typical : bool
        Keep the median of the runs (what a client timing a batch sees) instead of the
        best (the model's own speed, without the host's noise).
    within : float
        Stop repeating once the runs add up to this many seconds.
    """

    probe_rows: int
    probe_seconds: float
    repeats: int = 2
    typical: bool = False
    within: float = math.inf

    def seconds_per_1000(self, run: Callable[[int], object], rows: int) -> float:
        """Seconds per 1,000 rows of ``run(n)``, which predicts the first ``n`` of
        ``rows`` rows."""
        probe = min(self.probe_rows, rows)
        took = _timed(run, probe)
        if took > self.probe_seconds:
            return took * 1000 / probe
        runs: list[float] = []
        while len(runs) < self.repeats and sum(runs) < self.within:
            runs.append(_timed(run, rows))
        return float(np.median(runs) if self.typical else min(runs)) * 1000 / rows


def _timed(run: Callable[[int], object], n: int) -> float:
    started = time.perf_counter()
    run(n)
    return time.perf_counter() - started
