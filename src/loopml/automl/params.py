"""Checks of ``AutoML``'s parameters, each naming the parameter at fault."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loopml.automl.learners import DEFAULT_LEARNERS, get_learner, image_learners
from loopml.core.enums import TaskType
from loopml.core.errors import InvalidInput

# Seconds per 1,000 rows, parsing included: tables (the aim is 0.05; timings drift by a
# fifth from run to run on a busy machine).
_PREDICTION_BUDGET = 0.04
SEARCHERS = ("tpe", "cfo")
_IMAGE_PREDICTION_BUDGET = 1.0  # images
_BACKBONE_PREDICTION_BUDGET = 30.0  # images through a pretrained ResNet, on a CPU


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_range(
    name: str, value: Any, low: float, high: float | None = None, *, integer: bool = False
) -> None:
    """``value`` is a number (an integer if asked) with ``low < value`` (``< high``)."""
    kind_ok = isinstance(value, int) and not isinstance(value, bool) if integer else _number(value)
    if not kind_ok or not value > low or (high is not None and not value < high):
        kind = "an integer" if integer else "a number"
        span = f"above {low:g}" if high is None else f"between {low:g} and {high:g}"
        raise InvalidInput(f"{name} must be {kind} {span}, got {value!r}", field=name)


def check_params(params: dict[str, Any], task: TaskType, images: bool = False) -> list[str]:
    """Check every parameter of an ``AutoML``; return the learners to search (``images``:
    the data has an image column)."""
    check_range("time_budget", params["time_budget"], 0)
    check_range("seed", params["seed"], -1, 2**32, integer=True)
    check_range("n_folds", params["n_folds"], 1, integer=True)
    if params["max_trials"] is not None:
        check_range("max_trials", params["max_trials"], 0, integer=True)
    if params["confidence_threshold"] is not None:
        check_range("confidence_threshold", params["confidence_threshold"], 0, 1)
    if params["prediction_budget"] not in (None, "auto"):
        check_range("prediction_budget", params["prediction_budget"], 0)
    if params["searcher"] not in SEARCHERS:
        raise InvalidInput(
            f"searcher must be one of {', '.join(SEARCHERS)}, got {params['searcher']!r}",
            field="searcher",
        )
    if params["cost_matrix"] is not None and task is not TaskType.binary:
        raise InvalidInput("a cost matrix applies to binary tasks only", field="cost_matrix")
    backbone = params["backbone"]
    if backbone is not None:
        if not images:
            raise InvalidInput(
                "a backbone reads images, and the data has no image column", field="backbone"
            )
        if not Path(backbone).expanduser().is_file():
            raise InvalidInput(f"backbone weights file not found: {backbone}", field="backbone")
        backbone = str(backbone)
    return usable_learners(params["learners"], task, images, backbone)


def prediction_budget(params: dict[str, Any], images: bool) -> float | None:
    """Seconds per 1,000 rows the ensemble may spend predicting, or None for no limit."""
    if params["max_trials"] is not None or params["prediction_budget"] is None:
        return None
    if params["prediction_budget"] != "auto":
        return float(params["prediction_budget"])
    if not images:
        return _PREDICTION_BUDGET
    return _IMAGE_PREDICTION_BUDGET if params["backbone"] is None else _BACKBONE_PREDICTION_BUDGET


def usable_learners(
    chosen: Sequence[str] | None,
    task: TaskType,
    images: bool = False,
    backbone: str | None = None,
) -> list[str]:
    """The named learners (all of them must work here), or every default one that does:
    with an image column, the image learners first (the strongest there), those that
    finish on their own before the anytime CNN, whose trial takes part of the time left;
    the rest try classic image features."""
    first = sorted(image_learners(), key=lambda n: get_learner(n).anytime) if images else []
    default = [*first, *DEFAULT_LEARNERS]
    names = list(chosen) if chosen is not None else default
    if not names:
        raise InvalidInput("name at least one learner", field="learners")
    usable = []
    for name in names:
        learner = get_learner(name, backbone)
        why = learner.available()
        if why is None and learner.images_only and not images:
            why = "it reads images, and the data has no image column"
        if why is None and learner.supports(task):
            usable.append(name)
        elif chosen is not None:
            raise InvalidInput(
                f"learner {name!r} cannot be used here: {why or f'no {task.value} support'}",
                field="learners",
            )
    return usable
