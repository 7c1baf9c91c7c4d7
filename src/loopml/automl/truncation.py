"""Boosted candidates cut to fewer rounds, so that the prediction budget can keep them.

A multiclass booster grows one tree per class each round: LightGBM's defaults on ten
classes are 1,000 trees, slower than the prediction budget, and the ensemble had to leave
the best model of the search out. A booster's first rounds are a model too (boosting never
changes the trees it has grown), so a cut candidate is scored on the folds by its fold
models' first rounds, with nothing fitted again.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from loopml.automl.cv import TrialResult, Workspace
from loopml.automl.learners import get_learner, thread_limit
from loopml.automl.metrics import Metric

# Each cut is sized to this share of the prediction budget: the largest to serve alone,
# the smaller ones to leave room for other members beside them.
_SHARES = (0.8, 0.5, 0.3)
# Over-budget candidates cut, best first: each cut costs one prediction of the folds.
_SOURCES = 3


def _cuttable(candidate: TrialResult) -> bool:
    learner = get_learner(candidate.learner)
    return bool(candidate.models) and all(
        learner.boosted_rounds(m) is not None for m in candidate.models or []
    )


def truncated_candidates(
    candidates: list[TrialResult],
    ws: Workspace,
    metric: Metric,
    budget: float,
    first_id: int,
    deadline: float = math.inf,
) -> list[TrialResult]:
    """Cuts of the best boosted ``candidates`` that predict slower than ``budget``.

    Only candidates that score better than every candidate within the budget are cut:
    the others' cuts would rarely help the ensemble, and each cut costs a prediction of
    every fold. Each cut's fold models predict with their first
    rounds; its time is the whole's, scaled by the share of rounds it keeps. Cuts get ids
    from ``first_id`` on and name their source in ``truncated_from``. No cut is started
    after ``deadline`` (``time.monotonic()``).
    """
    sign = 1.0 if metric.greater_is_better else -1.0
    scored = [c for c in candidates if np.isfinite(c.score)]
    within = [sign * c.score for c in scored if c.predict_seconds_per_1000 <= budget]
    floor = max(within, default=-np.inf)
    over = [
        c
        for c in scored
        if c.predict_seconds_per_1000 > budget and sign * c.score > floor and _cuttable(c)
    ]
    over.sort(key=lambda c: (-sign * c.score, c.id))
    cuts: list[TrialResult] = []
    for source in over[:_SOURCES]:
        learner = get_learner(source.learner)
        models = source.models or []
        rounds = max(learner.boosted_rounds(m) or 0 for m in models)
        timed = learner.boosted_rounds(models[-1]) or rounds  # the fold model timed
        per_round = source.predict_seconds_per_1000 / timed
        # (the epsilon: 0.15 / 0.01 is 14.999... in floating point)
        kept = sorted({int(budget * share / per_round + 1e-9) for share in _SHARES}, reverse=True)
        for k in (k for k in kept if 0 < k < rounds):
            if time.monotonic() >= deadline:
                return cuts
            cut = [learner.truncated(m, k) for m in models]
            oof = np.zeros_like(np.asarray(source.oof))
            scores = []
            with thread_limit(1):
                for f, (_, valid) in enumerate(ws.folds):
                    pred = cut[f].predict(ws.view(f, learner.family)[1])
                    oof[valid] = pred
                    scores.append(metric.value(ws.y[valid], pred))
            cuts.append(
                dataclasses.replace(
                    source,
                    id=first_id + len(cuts),
                    params={**source.params, "rounds": k},
                    fold_scores=scores,
                    score=metric.value(ws.y, oof),
                    # what its refit should take: the source's, for the rounds it keeps
                    fit_seconds=source.fit_seconds * k / rounds,
                    predict_seconds_per_1000=per_round * min(k, timed),
                    oof=oof,
                    models=cut,
                    truncated_from=source.id,
                )
            )
    return cuts
