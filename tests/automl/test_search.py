"""The search: leaderboard, baselines, trial bounds, determinism, logs, progress, budget."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.automl import AutoML, Progress
from loopml.automl.columns import parse, plan_columns
from loopml.automl.cv import TrialResult, Workspace, evaluate, make_folds
from loopml.automl.learners import REGISTRY, Learner, get_learner
from loopml.automl.metrics import get_metric
from loopml.core.enums import TaskType
from loopml.core.errors import InvalidInput

from .support import automl, noise_frame, xor_frame

MAX_TRIALS = 4
SEARCH: dict[str, Any] = {
    "learners": ["lightgbm", "linear"],
    "max_trials": MAX_TRIALS,
    "time_budget": 60.0,  # never binding: max_trials ends the search
}
LEADERBOARD_COLUMNS = [
    "rank",
    "model",
    "trial",
    "learner",
    "status",
    "score",
    "score_std",
    "fit_seconds",
    "predict_seconds_per_1000",
    "ensemble_weight",
    "over_prediction_budget",
    "baseline",
    "params",
    "error",
]


class Searched:
    """A fitted search with what it logged and reported."""

    def __init__(self, log_path: Path) -> None:
        self.X, self.y = xor_frame()
        self.log_path = log_path
        self.progress: list[Progress] = []
        self.model = automl(**SEARCH, log_path=log_path, on_progress=self.progress.append)
        self.model.fit(self.X, self.y)


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Searched:
    return Searched(tmp_path_factory.mktemp("search") / "trials.jsonl")


def _without_timings(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    timings = {"fit_seconds", "predict_seconds_per_1000"}
    return [{k: v for k, v in r.items() if k not in timings} for r in records]


def test_the_leaderboard_has_baselines_and_the_ensemble_first(searched: Searched) -> None:
    board = searched.model.leaderboard_
    assert list(board.columns) == LEADERBOARD_COLUMNS
    assert board["rank"].tolist() == list(range(1, len(board) + 1))
    assert board.loc[0, "model"] == "ensemble"
    models = board["model"].tolist()
    assert {"baseline_prior", "baseline_linear"} <= set(models)
    assert board.loc[board["model"].str.startswith("baseline_"), "baseline"].all()
    assert len(board) == len(searched.model.trials_) + 1
    ok = board[board["status"] == "ok"]
    np.testing.assert_allclose(ok["score"], np.sort(ok["score"])[::-1])  # AUC: best first
    members = json.loads(board.loc[0, "params"])["members"]
    assert members and sum(m["weight"] for m in members) == pytest.approx(1.0)


def test_max_trials_bounds_the_searched_trials(searched: Searched) -> None:
    trials = searched.model.trials_
    assert [t["id"] for t in trials] == list(range(len(trials)))
    assert sum(not t["baseline"] for t in trials) == MAX_TRIALS
    assert [t["learner"] for t in trials if t["baseline"]] == ["prior", "linear"]


def test_a_learnable_problem_beats_the_baselines(searched: Searched) -> None:
    model = searched.model
    assert model.beats_baselines_ is True
    margin = model.baseline_margin_
    assert margin["baseline"] in ("baseline_prior", "baseline_linear")
    assert margin["margin"] > margin["noise"] >= 0
    assert model.leaderboard_.loc[0, "score"] > 0.9  # XOR: trees get it, a line cannot


def test_pure_noise_does_not_beat_the_baselines() -> None:
    """Random labels: no verdict of "beats the baselines", and on average the margin is
    well inside the fold-to-fold noise (an optimistic out-of-fold score, e.g. boosting
    stopped early on the very fold it is scored on, pushes it up)."""
    margins, noises = [], []
    for seed in range(1, 7):
        X, y = noise_frame(seed=seed)
        model = automl(learners=["lightgbm"], max_trials=3, n_folds=5, time_budget=60)
        model.fit(X, y)
        assert model.beats_baselines_ is False, seed
        margins.append(model.baseline_margin_["margin"])
        noises.append(model.baseline_margin_["noise"])
    assert np.mean(margins) < 0.5 * np.mean(noises)


def test_every_trial_is_logged_as_one_json_line(searched: Searched) -> None:
    lines = searched.log_path.read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == len(searched.model.trials_)
    assert records == json.loads(json.dumps(searched.model.trials_))
    for record in records:
        assert set(record) >= {"id", "learner", "params", "status", "score", "fold_scores"}


def test_a_logged_record_reproduces_its_fold_scores(searched: Searched) -> None:
    schema = plan_columns(searched.X)
    raw = parse(searched.X, schema)
    y = searched.y  # already 0/1 codes
    folds = make_folds(y, TaskType.binary, n_folds=3, seed=0)
    ws = Workspace(raw, y, folds, TaskType.binary, n_classes=2, seed=0)
    metric = get_metric(searched.model.metric_, TaskType.binary)
    records = [json.loads(line) for line in searched.log_path.read_text().splitlines()]
    rebuilt = 0
    for record in records:
        if record["status"] != "ok":
            continue
        trial = TrialResult(record["id"], record["learner"], record["params"])
        learner = get_learner(record["learner"])
        evaluate(trial, learner, ws, metric, n_jobs=1, deadline=time.monotonic() + 60)
        assert trial.status == "ok"
        np.testing.assert_allclose(trial.fold_scores, record["fold_scores"], rtol=1e-9)
        rebuilt += 1
    assert rebuilt >= 3


def test_on_progress_is_called_once_per_trial(searched: Searched) -> None:
    progress = searched.progress
    assert len(progress) == len(searched.model.trials_)
    assert [p.trials_done for p in progress] == list(range(1, len(progress) + 1))
    best = [p.best_score for p in progress]
    assert all(b is not None for b in best)
    assert best == sorted(best)  # AUC: the best so far never gets worse
    assert all(p.time_left >= 0 and p.elapsed >= 0 for p in progress)
    assert progress[-1].best_learner in {"lightgbm", "linear"}


def test_the_same_seed_gives_the_same_model(searched: Searched, tmp_path: Path) -> None:
    again = automl(**SEARCH, log_path=tmp_path / "again.jsonl").fit(searched.X, searched.y)
    np.testing.assert_array_equal(
        again.predict_proba(searched.X), searched.model.predict_proba(searched.X)
    )
    assert _without_timings(again.trials_) == _without_timings(searched.model.trials_)
    logged = [json.loads(line) for line in (tmp_path / "again.jsonl").read_text().splitlines()]
    assert _without_timings(logged) == _without_timings(searched.model.trials_)
    board, first = again.leaderboard_, searched.model.leaderboard_
    timings = ["fit_seconds", "predict_seconds_per_1000"]
    pd.testing.assert_frame_equal(board.drop(columns=timings), first.drop(columns=timings))


@pytest.mark.timeout(120)
def test_the_time_budget_ends_an_unbounded_search() -> None:
    X, y = xor_frame(n=120)
    model = automl(learners=["lightgbm", "linear"], max_trials=None, time_budget=3).fit(X, y)
    searched = [t for t in model.trials_ if not t["baseline"]]
    assert any(t["status"] == "ok" for t in searched)
    assert model.predict(X).shape == (120,)


class _Broken(Learner):
    """A learner whose every fit fails."""

    name = "broken"
    family = "dense"

    def portfolio(self, task: TaskType, n_rows: int) -> list[dict[str, Any]]:
        return [{}]

    def space(self, trial: Any, task: TaskType, n_rows: int) -> dict[str, Any]:
        return {}

    def fit(self, X: Any, y: Any, X_val: Any, y_val: Any, params: Any, ctx: Any) -> Any:
        raise RuntimeError("out of coffee")

    def load(self, files: Any, meta: Any) -> Any:
        raise AssertionError("never saved")


def test_a_failing_learner_is_reported_and_the_search_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(REGISTRY, "broken", _Broken())
    X, y = xor_frame(n=90)
    model = automl(learners=["broken", "lightgbm"], max_trials=2).fit(X, y)
    board = model.leaderboard_
    failed = board[board["learner"] == "broken"]
    assert failed["status"].tolist() == ["failed"]
    assert "out of coffee" in failed["error"].iloc[0]
    assert failed.index[0] == len(board) - 1  # failures rank last
    assert model.predict(X).shape == (90,)


def test_an_explicit_learner_that_does_not_fit_the_task_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class _ClassifierOnly(_Broken):
        name = "classifier_only"

        def supports(self, task: TaskType) -> bool:
            return task is not TaskType.regression

    monkeypatch.setitem(REGISTRY, "classifier_only", _ClassifierOnly())
    X, y = xor_frame(n=60)
    with pytest.raises(Exception, match="no regression support") as info:
        AutoML(learners=["classifier_only"], n_jobs=1).fit(X, y + np.linspace(0, 1, 60))
    assert getattr(info.value, "field", None) == "learners"


def test_the_prediction_budget_keeps_slow_models_out_of_the_ensemble() -> None:
    X, y = xor_frame()
    both: dict[str, Any] = {"learners": ["extra_trees", "linear"], "time_budget": 3}
    free = automl(**both, max_trials=None, prediction_budget=None)
    tight = automl(**both, max_trials=None, prediction_budget=1e-6)
    free.fit(X, y)
    tight.fit(X, y)
    # xor: the forest wins without a limit; with one, only the fastest model may serve.
    assert "extra_trees" in {m.learner for m in free.predictor_.members}
    assert {m.learner for m in tight.predictor_.members} == {"linear"}
    costs = {
        t["learner"]: t["predict_seconds_per_1000"] for t in tight.trials_ if t["status"] == "ok"
    }
    assert costs["extra_trees"] > costs["linear"]
    # The leaderboard says why the forest, the better model, is not the one served.
    board = tight.leaderboard_
    forests = board[(board["model"] == "extra_trees") & (board["status"] == "ok")]
    ensemble = board[board["model"] == "ensemble"].iloc[0]
    assert ensemble["rank"] > forests["rank"].min()
    assert forests["over_prediction_budget"].all()
    assert (forests["ensemble_weight"] == 0.0).all()
    assert board.loc[board["learner"] == "linear", "ensemble_weight"].sum() == 1.0
    assert not ensemble["over_prediction_budget"]
    assert not free.leaderboard_["over_prediction_budget"].any()
    assert free.leaderboard_["model"].iloc[0] == "ensemble"


@pytest.mark.parametrize("budget", [0, -1.0, "fast"])
def test_a_bad_prediction_budget_is_refused(budget: Any) -> None:
    X, y = xor_frame()
    with pytest.raises(InvalidInput) as err:
        automl(prediction_budget=budget).fit(X, y)
    assert err.value.field == "prediction_budget"


def test_only_the_best_candidates_keep_their_models(monkeypatch: pytest.MonkeyPatch) -> None:
    # A trial worse than every kept one loses its models at once; the search goes on.
    import loopml.automl.search as search

    monkeypatch.setattr(search, "_KEEP", 2)
    X, y = xor_frame()
    model = automl(learners=["linear", "knn"], max_trials=8).fit(X, y)
    searched = [t for t in model.trials_ if not t["baseline"]]
    assert sum(t["status"] == "ok" for t in searched) >= 3
    assert model.leaderboard_["model"].iloc[0] == "ensemble"


def test_when_no_learner_can_fit_the_error_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    class _BrokenLinear(_Broken):
        name = "linear"

    monkeypatch.setitem(REGISTRY, "broken", _Broken())
    monkeypatch.setitem(REGISTRY, "linear", _BrokenLinear())  # the baseline fails too
    X, y = xor_frame(n=90)
    with pytest.raises(InvalidInput) as err:
        automl(learners=["broken"], max_trials=2).fit(X, y)
    assert err.value.field == "X"
    assert "out of coffee" in str(err.value)


class _Anytime(_Broken):
    """An anytime learner (as the CNN is) that is never to be fitted here."""

    name = "anytime"
    anytime = True

    def setup_seconds(self) -> float:
        return 2.0  # imports still to make, as PyTorch's before the first CNN


def test_an_anytime_learner_short_of_time_does_not_go_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 2 s of budget, less its imports, leaves it under a second a fold: the first real
    # model is the next learner's, and the fit ends near its budget.
    monkeypatch.setitem(REGISTRY, "anytime", _Anytime())
    X, y = xor_frame(n=90)
    started = time.monotonic()
    model = automl(learners=["anytime", "linear"], max_trials=None, time_budget=2).fit(X, y)
    assert time.monotonic() - started < 2 + 5.0  # the first model's floor is 5 s
    learners = [t["learner"] for t in model.trials_ if not t["baseline"]]
    assert learners and "anytime" not in learners
    # alone, it is still the one real model, however short the time
    alone = automl(learners=["anytime"], max_trials=None, time_budget=2).fit(X, y)
    (tried,) = [t for t in alone.trials_ if t["learner"] == "anytime"]
    assert "out of coffee" in tried["error"]


class _Greedy(_Broken):
    """A learner that uses every second it is given (as CatBoost on many classes does,
    stopped only by its deadline), then fits the linear model."""

    name = "greedy"

    def fit(self, X: Any, y: Any, X_val: Any, y_val: Any, params: Any, ctx: Any) -> Any:
        while ctx.time_left() > 0:
            time.sleep(0.01)
        return get_learner("linear").fit(X, y, X_val, y_val, {"C": 1.0}, ctx)


def test_a_learner_slower_than_expected_leaves_time_for_the_untried_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import loopml.automl.search as search

    monkeypatch.setattr(search, "_FIRST_SECONDS", 0.5)  # the first model's floor, shortened
    monkeypatch.setitem(REGISTRY, "greedy", _Greedy())
    X, y = xor_frame(n=120)
    model = automl(learners=["greedy", "knn", "extra_trees"], max_trials=None, time_budget=4)
    model.fit(X, y)
    searched = [t for t in model.trials_ if not t["baseline"]]
    assert searched[0]["learner"] == "greedy"  # it goes first and could take everything
    tried = {t["learner"] for t in searched if t["status"] == "ok"}
    assert {"knn", "extra_trees"} <= tried


def test_tpe_searches_beyond_the_portfolio_and_prunes_what_falls_behind() -> None:
    X, y = xor_frame()
    model = automl(learners=["linear", "knn"], max_trials=16, time_budget=120.0).fit(X, y)
    searched = [t for t in model.trials_ if not t.get("baseline")]
    portfolio = [
        {"learner": lr, **params}
        for lr in ("linear", "knn")
        for params in REGISTRY[lr].portfolio(TaskType.binary, len(y))
    ]
    tried = [{"learner": t["learner"], **t["params"]} for t in searched]
    assert any(t not in portfolio for t in tried)  # TPE proposed configurations of its own
    pruned = [t for t in searched if t["status"] == "pruned"]
    assert pruned, [(t["learner"], t["status"], t["score"]) for t in searched]
    # Pruned after two of three folds: the scores it had, below the median of the rest.
    assert all(len(t["fold_scores"]) == 2 for t in pruned)


@pytest.mark.parametrize("n_jobs", [2])
def test_the_same_seed_and_threads_give_the_same_model(n_jobs: int) -> None:
    X, y = xor_frame()
    fits = [automl(**SEARCH, n_jobs=n_jobs).fit(X, y) for _ in range(2)]
    np.testing.assert_array_equal(fits[0].predict_proba(X), fits[1].predict_proba(X))
    assert _without_timings(fits[0].trials_) == _without_timings(fits[1].trials_)
