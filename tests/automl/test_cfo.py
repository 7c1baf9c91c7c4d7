"""The cost-frugal local search: it walks toward better configurations from where the
portfolio left it, and spends its trials on the learner that pays."""

from __future__ import annotations

import math
import warnings
from typing import Any

import optuna
import pytest

from loopml.automl.cfo import CostFrugalSampler, _eci, _Ledger
from loopml.core.errors import InvalidInput

from .support import automl, xor_frame


def _objective(trial: optuna.Trial) -> float:
    learner = trial.suggest_categorical("learner", ["good", "poor"])
    x = trial.suggest_float(f"{learner}.x", 0.0, 1.0)
    rate = trial.suggest_float(f"{learner}.rate", 1e-3, 1.0, log=True)
    leaves = trial.suggest_int(f"{learner}.leaves", 2, 256, log=True)
    # "good" peaks at 1.0 (x 0.7, rate 0.1, 64 leaves).
    fit = (x - 0.7) ** 2 + 0.1 * (math.log10(rate) + 1) ** 2
    fit += 0.05 * (math.log2(leaves) - 6) ** 2
    # "poor" scores 0.3 whatever its parameters: nothing to improve.
    return 1.0 - fit if learner == "good" else 0.3


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
    assert starts[0] < 0.5  # the portfolio's start for "good" is far off
    assert study.best_value > 0.97
    assert study.best_params["learner"] == "good"


def test_the_learner_that_keeps_improving_gets_most_trials() -> None:
    """FLAML's estimated cost for improvement: the time since a learner last improved."""
    stalled = _Ledger(spent=20.0, best=0.3, found_at=1.0, found_before=0.0, first_cost=1.0)
    improving = _Ledger(spent=20.0, best=0.9, found_at=19.0, found_before=17.0, first_cost=1.0)
    assert _eci(stalled) == 19.0 and _eci(improving) == 2.0
    study = _study(seed=0)  # proposals repeat exactly: counts are not left to chance
    learners = [t.params["learner"] for t in study.trials[2:]]
    assert learners.count("good") > 1.5 * learners.count("poor")
    assert learners.count("poor") > 0  # the other is still tried now and then


def test_a_learner_passed_over_as_too_slow_is_not_drawn_again() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=CostFrugalSampler(0, timed=False))
    study.enqueue_trial({"learner": "good", "good.x": 0.1, "good.rate": 0.9, "good.leaves": 4})
    drawn = []
    for _ in range(30):
        trial = study.ask()
        learner = trial.suggest_categorical("learner", ["good", "slow"])
        drawn.append(learner)
        if learner == "slow":  # as Search does: told pruned before it ran
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        study.tell(trial, _objective_of(trial, learner))
    assert drawn.count("slow") == 1


def _objective_of(trial: optuna.Trial, learner: str) -> float:
    x = trial.suggest_float(f"{learner}.x", 0.0, 1.0)
    trial.suggest_float(f"{learner}.rate", 1e-3, 1.0, log=True)
    trial.suggest_int(f"{learner}.leaves", 2, 256, log=True)
    return -((x - 0.7) ** 2)


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


def test_a_step_that_rounds_back_to_a_tried_integer_is_not_fitted_again() -> None:
    """A forest's one dimension is an integer from 1 to 20: a small step rounds back to
    where the walk stands, and each such proposal would be a whole fit for nothing."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=CostFrugalSampler(0, timed=False))
    study.enqueue_trial({"learner": "forest", "forest.leaf": 1})

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_categorical("learner", ["forest"])
        return -abs(trial.suggest_int("forest.leaf", 1, 20, log=True) - 6)

    study.optimize(objective, n_trials=10)
    leaves = [t.params["forest.leaf"] for t in study.trials]
    assert len(set(leaves)) == len(leaves), leaves
    assert study.best_params["forest.leaf"] == 6
