"""The learner registry: adding a model family is a class and one line here."""

from __future__ import annotations

import threading
from importlib.metadata import entry_points

from loopml.automl.learners.base import (
    FitContext,
    Learner,
    Model,
    thread_limit,
    timed_predictions,
)
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


ENTRY_POINTS = "loopml.learners"
_plugins: list[bool] = []  # set once the entry points have been read
_plugins_lock = threading.Lock()


def register(learner: Learner) -> Learner:
    """Add a learner (e.g. from ``loopml.vision``) to the registry."""
    REGISTRY[learner.name] = learner
    return learner


def load_plugins() -> None:
    """Register the learners installed packages declare under the ``loopml.learners``
    entry point (``loopml.vision``'s CNN among them); a plugin that fails to import is
    skipped, so one broken package cannot stop AutoML."""
    with _plugins_lock:  # importing a plugin (torch) takes seconds: others wait for it
        if _plugins:
            return
        for point in entry_points(group=ENTRY_POINTS):
            if point.name in REGISTRY:
                continue
            try:
                REGISTRY[point.name] = point.load()()
            except Exception:  # a broken plugin: get_learner says so when asked for it
                continue
        _plugins.append(True)


def image_learners() -> list[str]:
    """Registered learners of the image view (plugins included)."""
    load_plugins()
    return [name for name, learner in REGISTRY.items() if learner.images_only]


def get_learner(name: str, backbone: str | None = None) -> Learner:
    """The registered learner ``name``, for a fit with the ``backbone`` weights file."""
    if name not in REGISTRY:
        load_plugins()
    try:
        learner = REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise InvalidInput(
            f"unknown learner {name!r}; choose from: {known}", field="learners"
        ) from None
    return learner if backbone is None else learner.with_backbone(backbone)


__all__ = [
    "DEFAULT_LEARNERS",
    "REGISTRY",
    "FitContext",
    "Learner",
    "Model",
    "get_learner",
    "image_learners",
    "load_plugins",
    "register",
    "thread_limit",
    "timed_predictions",
]
