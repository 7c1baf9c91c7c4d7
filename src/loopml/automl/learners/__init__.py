"""The learner registry: adding a model family is a class and one line here."""

from __future__ import annotations

from loopml.automl.learners.base import FitContext, Learner, Model
from loopml.automl.learners.gbm_catboost import CatBoostLearner
from loopml.automl.learners.gbm_lightgbm import LightGBMLearner
from loopml.automl.learners.gbm_xgboost import XGBoostLearner
from loopml.automl.learners.sklearn_models import (
    ExtraTreesLearner,
    LinearLearner,
    NeighboursLearner,
    PriorLearner,
    RandomForestLearner,
)
from loopml.core.errors import InvalidInput

REGISTRY: dict[str, Learner] = {
    learner.name: learner
    for learner in (
        LightGBMLearner(),
        XGBoostLearner(),
        CatBoostLearner(),
        ExtraTreesLearner(),
        RandomForestLearner(),
        LinearLearner(),
        NeighboursLearner(),
        PriorLearner(),
    )
}

# The searched learners when the caller names none (the prior is a baseline only), in
# the order their portfolio configurations run: strongest at small budgets first.
DEFAULT_LEARNERS = (
    "lightgbm",
    "xgboost",
    "catboost",
    "extra_trees",
    "knn",
    "random_forest",
    "linear",
)


def register(learner: Learner) -> Learner:
    """Add a learner (e.g. from ``loopml.vision``) to the registry."""
    REGISTRY[learner.name] = learner
    return learner


def get_learner(name: str) -> Learner:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise InvalidInput(
            f"unknown learner {name!r}; choose from: {known}", field="learners"
        ) from None


__all__ = [
    "DEFAULT_LEARNERS",
    "REGISTRY",
    "FitContext",
    "Learner",
    "Model",
    "get_learner",
    "register",
]
