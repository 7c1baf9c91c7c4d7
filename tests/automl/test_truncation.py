"""Boosters cut to fewer rounds join the ensemble where the whole would predict too slowly."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.automl import REGISTRY, AutoML, cv
from loopml.automl.columns import parse, plan_columns
from loopml.automl.cv import TrialResult, Workspace, evaluate, make_folds
from loopml.automl.learners import FitContext, get_learner
from loopml.automl.learners.base import ROUNDS_KEY
from loopml.automl.learners.gbm_lightgbm import LightGBMLearner
from loopml.automl.metrics import get_metric
from loopml.automl.persist import read, write
from loopml.automl.truncation import truncated_candidates
from loopml.core.enums import TaskType

CLASSES = 4


def _rings(n: int = 360, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Four classes by distance from the origin: trees learn it, a linear model cannot."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.uniform(-1, 1, size=(n, 3)), columns=["a", "b", "c"])
    radius = np.hypot(X["a"], X["b"])
    y = np.minimum((radius * 3).astype(int), CLASSES - 1).to_numpy()
    return X, y


def _context() -> FitContext:
    return FitContext(TaskType.multiclass, CLASSES, seed=0, n_jobs=1, deadline=math.inf)


@pytest.mark.parametrize(
    ("learner", "params"),
    [
        ("lightgbm", {"learning_rate": 0.1, "num_leaves": 8, "feature_fraction": 0.75}),
        ("xgboost", {"eta": 0.1, "max_depth": 3, "colsample_bytree": 0.75}),
    ],
)
def test_a_cut_booster_predicts_as_one_fitted_with_that_many_rounds(
    learner: str, params: dict[str, Any], tmp_path: Path
) -> None:
    X, y = _rings()
    values = X.to_numpy()
    boosting = get_learner(learner)
    whole = boosting.fit(values, y, None, None, {**params, "rounds": 60}, _context())
    short = boosting.fit(values, y, None, None, {**params, "rounds": 20}, _context())
    cut = boosting.truncated(whole, 20)
    assert boosting.boosted_rounds(cut) == 20
    assert boosting.boosted_rounds(whole) == 60  # the whole is left as it was
    np.testing.assert_allclose(cut.predict(values), short.predict(values), rtol=1e-6)
    assert not np.allclose(whole.predict(values), short.predict(values))
    # One row (the single-row path of a served request) agrees with a batch, whichever
    # of the whole and the cut (which share trees) predicted last.
    for _ in range(2):
        np.testing.assert_allclose(cut.predict(values[:1]), short.predict(values[:1]), rtol=1e-6)
        np.testing.assert_allclose(whole.predict(values[:1]), whole.predict(values)[:1])
        whole.predict(values)
    # Saved, the cut holds its rounds only; its refit boosts that many, a little more.
    files, meta = cut.dump()
    digest = write(tmp_path / "cut", {k: v for k, v in files.items()})
    loaded = boosting.load(read(tmp_path / "cut", digest)[0], json.loads(json.dumps(meta)))
    assert boosting.boosted_rounds(loaded) == 20
    np.testing.assert_allclose(loaded.predict(values), short.predict(values), rtol=1e-6)
    assert boosting.full_params(params, [cut, cut])[ROUNDS_KEY] == 22


def _workspace() -> Workspace:
    X, y = _rings()
    raw = parse(X, plan_columns(X))
    return Workspace(
        raw, y, make_folds(y, TaskType.multiclass, 3, 0), TaskType.multiclass, CLASSES, 0
    )


def _trial(
    ws: Workspace, id: int, learner: str, params: dict[str, Any], cost: float
) -> TrialResult:
    metric = get_metric("log_loss", TaskType.multiclass)
    trial = evaluate(
        TrialResult(id, learner, params), get_learner(learner), ws, metric, 1, math.inf
    )
    assert trial.status == "ok", trial.error
    return dataclasses.replace(trial, predict_seconds_per_1000=cost)


BOOSTER = {"learning_rate": 0.1, "num_leaves": 8, "min_data_in_leaf": 5, "rounds": 100}


def test_the_best_booster_over_the_budget_is_cut_to_fit_it() -> None:
    ws = _workspace()
    metric = get_metric("log_loss", TaskType.multiclass)
    booster = _trial(ws, 3, "lightgbm", BOOSTER, cost=1.0)  # 0.01 s per round
    linear = _trial(ws, 4, "linear", {"C": 1.0}, cost=0.001)
    assert booster.score < linear.score  # rings: the booster is the better model
    cuts = truncated_candidates([linear, booster], ws, metric, budget=0.5, first_id=10)
    rounds = [c.params["rounds"] for c in cuts]
    assert rounds == [40, 25, 15]  # 80%, 50% and 30% of the budget
    assert [c.id for c in cuts] == [10, 11, 12]
    for cut, kept in zip(cuts, rounds, strict=True):
        assert cut.truncated_from == 3 and cut.learner == "lightgbm"
        assert cut.predict_seconds_per_1000 == pytest.approx(0.01 * kept)
        # Refitting it is no free lunch: its share of the source's fitting time.
        assert cut.fit_seconds == pytest.approx(booster.fit_seconds * kept / 100)
        assert cut.record()["truncated_from"] == 3
        # Its out-of-fold predictions are its fold models' on the rows they never saw.
        for f, (_, valid) in enumerate(ws.folds):
            expected = cut.models[f].predict(ws.view(f, "native")[1])  # type: ignore[index]
            np.testing.assert_allclose(cut.oof[valid], expected)  # type: ignore[index]
        assert cut.oof is not None and cut.score == pytest.approx(metric.value(ws.y, cut.oof))
        assert cut.score != booster.score
    assert len({c.score for c in cuts}) == 3
    assert booster.models[0].rounds == 100  # type: ignore[index,union-attr]


def test_nothing_is_cut_where_it_fits_or_a_faster_candidate_is_better() -> None:
    ws = _workspace()
    metric = get_metric("log_loss", TaskType.multiclass)
    booster = _trial(ws, 3, "lightgbm", BOOSTER, cost=1.0)
    linear = _trial(ws, 4, "linear", {"C": 1.0}, cost=0.001)
    assert truncated_candidates([linear, booster], ws, metric, budget=2.0, first_id=10) == []
    better = dataclasses.replace(linear, score=booster.score / 2)
    assert truncated_candidates([better, booster], ws, metric, budget=0.5, first_id=10) == []
    # A forest grows no rounds to cut.
    forest = _trial(ws, 5, "extra_trees", {}, cost=1.0)
    assert forest.score < linear.score  # it would be cut, if it could be
    assert truncated_candidates([linear, forest], ws, metric, budget=0.5, first_id=10) == []


class _HundredRounds(LightGBMLearner):
    def space(self, trial: Any, task: TaskType, n_rows: int) -> dict[str, Any]:
        return {**super().space(trial, task, n_rows), "rounds": 100}

    def portfolio(self, task: TaskType, n_rows: int) -> list[dict[str, Any]]:
        return [{**p, "rounds": 100} for p in super().portfolio(task, n_rows)]


def test_a_fit_serves_a_cut_of_a_booster_too_slow_to_serve_whole(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Fold models' timings are made a fixed 0.01 s per round for boosters, so that which
    # candidates are over the budget does not depend on the machine's load.
    def timed(model: Any, X: np.ndarray, seconds: float) -> float:
        rounds = getattr(model, "rounds", None)
        return 0.01 * rounds if rounds else 0.001

    monkeypatch.setattr(cv, "_seconds_per_1000", timed)
    # Every LightGBM configuration boosts 100 rounds: none fits the budget whole.
    monkeypatch.setitem(REGISTRY, "lightgbm", _HundredRounds())
    X, y = _rings()
    log = tmp_path / "trials.jsonl"
    model = AutoML(
        learners=["lightgbm", "linear"], time_budget=8, n_jobs=1, n_folds=3, report=False,
        prediction_budget=0.5, log_path=log,
    ).fit(X, y)  # fmt: skip
    board = model.leaderboard_
    cut_rows = board[board["model"].str.contains("rounds of trial")]
    assert len(cut_rows), board[["model", "score"]]
    served = board[board["ensemble_weight"] > 0]
    assert served["model"].str.contains("rounds of trial").any()
    assert not board.loc[board["ensemble_weight"] > 0, "over_prediction_budget"].any()
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert {r["id"] for r in logged if "truncated_from" in r} == set(cut_rows["trial"])
    # The served cut, saved and loaded, predicts as it did.
    digest = model.save(tmp_path / "model")
    again = AutoML.load(tmp_path / "model", digest)
    np.testing.assert_allclose(again.predict_proba(X), model.predict_proba(X))
