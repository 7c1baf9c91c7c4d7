"""What a fitted ``AutoML`` saves beside its predictor's files, and how it is restored."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loopml.automl.predictor import Predictor
from loopml.core.enums import TaskType

if TYPE_CHECKING:
    from loopml.automl.estimator import AutoML


def state(model: AutoML) -> dict[str, Any]:
    """The fitted attributes as JSON-able values (``automl.json`` in a saved model)."""
    classes = None
    if model.classes_ is not None:
        classes = {
            "dtype": model.classes_.dtype.str if model.classes_.dtype != object else "O",
            "values": model.classes_.tolist(),
        }
    return {
        "params": {
            k: v for k, v in model.get_params().items() if k not in ("on_progress", "log_path")
        },
        "task": model.task_.value,
        "metric": model.metric_,
        "classes": classes,
        "threshold": model.threshold_,
        "feature_names_in": model.feature_names_in_.tolist(),
        "trials": model.trials_,
        "leaderboard": json.loads(model.leaderboard_.to_json(orient="records")),
        "beats_baselines": model.beats_baselines_,
        "baseline_margin": model.baseline_margin_,
        "report": getattr(model, "report_", None),
        "fit_seconds": model.fit_seconds_,
        "timings": model.timings_,
        "model_size": model.model_size_,
    }


def restore(
    model: AutoML, predictor: Predictor, files: dict[str, bytes], saved: dict[str, Any]
) -> None:
    """Set ``model``'s fitted attributes from what :func:`state` saved."""
    model.predictor_ = predictor
    model._predictor_files = files
    model.task_ = TaskType(saved["task"])
    model.metric_ = saved["metric"]
    classes = saved["classes"]
    model.classes_ = (
        None
        if classes is None
        else np.array(
            classes["values"], dtype=object if classes["dtype"] == "O" else classes["dtype"]
        )
    )
    model.threshold_ = saved["threshold"]
    model.feature_names_in_ = np.array(saved["feature_names_in"], dtype=object)
    model.n_features_in_ = len(model.feature_names_in_)
    model.schema_ = predictor.schema
    model.trials_ = saved["trials"]
    model.leaderboard_ = pd.DataFrame(saved["leaderboard"])
    model.beats_baselines_ = saved["beats_baselines"]
    model.baseline_margin_ = saved["baseline_margin"]
    model.report_ = saved["report"]
    model.fit_seconds_ = saved["fit_seconds"]
    model.timings_ = saved["timings"]
    model.model_size_ = saved["model_size"]
