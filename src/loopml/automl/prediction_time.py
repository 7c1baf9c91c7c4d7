"""How long the kept ensemble takes to predict, measured after the refit.

The search chooses members by their fold models' timings. The refit models can be
slower (more rounds, a kNN that holds every row), and parsing and encoding the rows
costs time no member pays alone: the ensemble is timed again as it will serve, and
members are dropped until it fits the prediction budget.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from loopml.automl.columns import parse
from loopml.automl.cv import TrialResult
from loopml.automl.learners import get_learner, thread_limit, timed_predictions
from loopml.automl.metrics import Metric
from loopml.automl.predictor import REFIT_FACTOR, Predictor
from loopml.automl.search import greedy_ensemble
from loopml.automl.timing import Timer

SAMPLE_ROWS = 1000
IMAGE_SAMPLE_ROWS = 50
# A probe of 10 rows slower than 0.05 s (a CNN) is extrapolated; parts are timed at their
# best of two runs, the whole at the median of three, as a client timing a batch sees it.
PARTS = Timer(probe_rows=10, probe_seconds=0.05, repeats=2)
WHOLE = Timer(probe_rows=10, probe_seconds=0.05, repeats=3, typical=True)
_ROUNDS = 3  # of timing and choosing again
# Past the fit's budget, a member not yet refitted may still be chosen if its refit should
# take no longer than this (a linear model's or a small forest's).
_LATE_REFIT_SECONDS = 0.25


@dataclass(frozen=True)
class Timing:
    """Seconds per 1,000 rows: the part every prediction pays, and each member's."""

    shared: float  # parsing the rows and encoding them for each family in use
    members: list[float]
    # The predictor's own predict, the median of three runs: the parts, each timed alone
    # at its best, added up to 0.032 s where serving took 0.037-0.052 s (a kNN and a deep
    # XGBoost evicting each other's data from the caches).
    whole: float | None = None

    @property
    def parts(self) -> float:
        return self.shared + sum(self.members)

    @property
    def total(self) -> float:
        return self.parts if self.whole is None else self.whole

    @property
    def scale(self) -> float:
        """How much slower the whole is than its parts added up (at least 1)."""
        return max(1.0, self.total / self.parts) if self.parts > 0 else 1.0


def sample_rows(images: bool) -> int:
    """Rows to time an ensemble on: 1,000 of a table; of images, few enough that their
    arrays stay small (1,000 photos at 224 x 224 would take 600 MB)."""
    return IMAGE_SAMPLE_ROWS if images else SAMPLE_ROWS


def time_predictor(predictor: Predictor, sample: pd.DataFrame) -> Timing:
    """Time a refitted ``predictor`` on ``sample`` (rows of the training frame)."""
    if not len(sample):
        raise ValueError("the timing sample has no rows")
    encoder = predictor.encoders[0]
    raw = parse(sample, predictor.schema)
    families = sorted({get_learner(m.learner).family for m in predictor.members})
    views = {f: encoder.transform(raw, f)[0] for f in families}
    rows = len(sample)
    # One thread, as the folds' timings of small data and the report's are.
    with thread_limit(1), timed_predictions():

        def shared(n: int) -> None:
            part = parse(sample.iloc[:n], predictor.schema)
            for f in families:
                encoder.transform(part, f)

        def member(i: int) -> Callable[[int], object]:
            model = predictor.members[i].models[0]
            view = views[get_learner(predictor.members[i].learner).family]
            return lambda n: model.predict(view[:n])

        def whole(n: int) -> None:
            predictor.predict(parse(sample.iloc[:n], predictor.schema))

        return Timing(
            shared=PARTS.seconds_per_1000(shared, rows),
            members=[
                PARTS.seconds_per_1000(member(i), rows) for i in range(len(predictor.members))
            ],
            whole=WHOLE.seconds_per_1000(whole, rows),
        )


def _refit_seconds(candidate: TrialResult) -> float:
    """What refitting ``candidate`` on all rows is expected to take."""
    return REFIT_FACTOR * candidate.fit_seconds / max(1, len(candidate.fold_scores))


def _slower_once_refitted(
    candidates: list[TrialResult], measured: dict[int, float]
) -> dict[str, float]:
    """Per learner, how many times slower its refitted members predicted than their fold
    models (1 at least): its other candidates' refits would be too (a kNN that holds
    every row; a forest of one configuration or another)."""
    slower: dict[str, float] = {}
    for i, seconds in measured.items():
        fold = candidates[i].predict_seconds_per_1000
        if np.isfinite(fold) and fold > 0:
            learner = candidates[i].learner
            slower[learner] = max(slower.get(learner, 1.0), seconds / fold)
    return slower


def within_budget(
    assemble: Callable[[dict[int, float]], tuple[Predictor, Predictor]],
    sample: pd.DataFrame,
    candidates: list[TrialResult],
    weights: dict[int, float],
    y: np.ndarray,
    metric: Metric,
    budget: float,
    choose_refitted_after: float = math.inf,
) -> tuple[dict[int, float], Predictor, Predictor, float]:
    """An ensemble whose refit, timed on ``sample``, fits ``budget`` where one can.

    ``weights`` (keyed by index into ``candidates``) are the ensemble chosen by the fold
    models' timings; ``assemble(weights)`` builds its bag of fold models and its refit.
    While the refit is over budget (and parsing and encoding alone are not: then fewer
    members would only predict worse), ensemble selection runs again with the measured
    timings of the members tried so far and what the shared part leaves of the budget
    (a member that is slow once refitted gives way to others, which are then refitted
    and timed in their turn; candidates of its learner are expected to be as much slower
    as it was). The whole is timed as served, and members' timings are scaled by how much
    slower the whole ran than its parts added up. From ``choose_refitted_after``
    (``time.monotonic()``: the end of the fit's budget) on, only members already refitted
    and those whose refit should take under ``_LATE_REFIT_SECONDS`` are chosen from, so
    that choosing again runs the fit little past its budget. Returns the weights, the bag,
    the refit and its measured seconds per 1,000 rows; after ``_ROUNDS`` the last try
    stands.
    """
    measured: dict[int, float] = {}
    bag, refit = assemble(weights)
    for _ in range(_ROUNDS):
        timing = time_predictor(refit, sample)
        if timing.total <= budget or timing.shared * timing.scale >= budget:
            break  # within it, or over it whatever the members: fewer would only be worse
        # Each member's share of the whole, as the whole ran slower than its parts.
        measured.update(zip(weights, (m * timing.scale for m in timing.members), strict=True))
        slower = _slower_once_refitted(candidates, measured)
        late = time.monotonic() >= choose_refitted_after
        pool = [
            i
            for i in range(len(candidates))
            if not late or i in measured or _refit_seconds(candidates[i]) <= _LATE_REFIT_SECONDS
        ]
        timed = [
            dataclasses.replace(
                candidates[i],
                predict_seconds_per_1000=measured[i]
                if i in measured
                else candidates[i].predict_seconds_per_1000 * slower.get(candidates[i].learner, 1),
            )
            for i in pool
        ]
        picked = greedy_ensemble(
            timed, y, metric, prediction_budget=max(budget - timing.shared * timing.scale, 0.0)
        )
        chosen = {pool[j]: w for j, w in picked.items()}
        if chosen == weights:
            break
        weights = chosen
        bag, refit = assemble(weights)
    else:
        timing = time_predictor(refit, sample)
    return weights, bag, refit, timing.total
