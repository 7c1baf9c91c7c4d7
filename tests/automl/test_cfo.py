"""The cost-frugal local search: it walks toward better configurations from where the
portfolio left it, and spends its trials on the learner that pays."""

from __future__ import annotations

import math
import warnings
from typing import Any

import optuna
import pytest

from loopml.automl.cfo import CostFrugalSampler
from loopml.core.errors import InvalidInput

from .support import automl, xor_frame


def _objective(trial: optuna.Trial) -> float:
    learner = trial.suggest_categorical("learner", ["good", "poor"])
    x = trial.suggest_float(f"{learner}.x", 0.0, 1.0)
    rate = trial.suggest_float(f"{learner}.rate", 1e-3, 1.0, log=True)
    leaves = trial.suggest_int(f"{learner}.leaves", 2, 256, log=True)
    # "good" peaks at 1.0 (x 0.7, rate 0.1, 64 leaves), "poor" at 0.5.
    fit = (x - 0.7) ** 2 + 0.1 * (math.log10(rate) + 1) ** 2
    fit += 0.05 * (math.log2(leaves) - 6) ** 2
    return (1.0 if learner == "good" else 0.5) - fit


def _study(seed: int) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=CostFrugalSampler(seed=seed, timed=False)
    )
    for learner in ("good", "poor"):  # the portfolio: one start per learner, far off
        start = {"x": 0.1, "rate": 0.9, "leaves": 4}
        study.enqueue_trial({"learner": learner, **{f"{learner}.{k}": v for k, v in start.items()}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(_objective, n_trials=80)
    return study


def test_the_walk_climbs_from_the_portfolio_towards_the_best_configuration() -> None:
    study = _study(seed=0)
    starts = [t.value for t in study.trials[:2]]
    assert max(starts) < 0.5  # the portfolio's starting points are poor
    assert study.best_value > 0.97
    assert study.best_params["learner"] == "good"


def test_the_learner_that_improves_gets_most_trials() -> None:
    study = _study(seed=1)
    learners = [t.params["learner"] for t in study.trials[2:]]
    assert learners.count("good") > 2 * learners.count("poor")
    assert learners.count("poor") > 0  # the other is still tried now and then


def test_the_same_seed_proposes_the_same_configurations() -> None:
    first, second = _study(seed=3), _study(seed=3)
    assert [t.params for t in first.trials] == [t.params for t in second.trials]


def test_automl_searches_with_cfo_beyond_the_portfolio() -> None:
    X, y = xor_frame()
    settings: dict[str, Any] = {"learners": ["lightgbm", "linear"], "max_trials": 8}
    model = automl(**settings, searcher="cfo").fit(X, y)
    searched = [t for t in model.trials_ if not t["baseline"] and t["learner"] == "lightgbm"]
    assert len({str(sorted(t["params"].items())) for t in searched}) == len(searched) >= 4
    again = automl(**settings, searcher="cfo").fit(X, y)
    assert [t["params"] for t in again.trials_] == [t["params"] for t in model.trials_]
    assert model.predict(X).shape == (len(y),)


def test_an_unknown_searcher_is_refused() -> None:
    X, y = xor_frame()
    with pytest.raises(InvalidInput) as err:
        automl(searcher="bayes").fit(X, y)
    assert err.value.field == "searcher" and "tpe, cfo" in err.value.message
