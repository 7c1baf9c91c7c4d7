"""The reference a model version is monitored against: a profile of its training rows and
of its out-of-fold answers (what it would have said about rows it had not seen), made
when the training ends."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from loopml.automl.decision import choose
from loopml.monitoring.profile import Profile, profile

PREDICTION = "prediction"
CONFIDENCE = "confidence"


def answers(
    task: str, oof: np.ndarray, classes: Any = None, threshold: float | None = None
) -> pd.DataFrame:
    """The model's answers as a frame: ``prediction`` (label or value) and, for
    classification, ``confidence`` (in the chosen class), decided as serving decides."""
    oof = np.asarray(oof, dtype=float)
    if task == "regression" or oof.ndim == 1:
        return pd.DataFrame({PREDICTION: oof.reshape(-1)})
    codes, confidence = choose(oof, threshold)
    labels = np.asarray(list(classes), dtype=object)[codes]
    # Labels are categories even when they are numbers: compared as values, not by size.
    return pd.DataFrame({PREDICTION: [str(v) for v in labels], CONFIDENCE: confidence})


def reference_profile(features: pd.DataFrame, model: Any) -> Profile:
    """The reference profile of a fitted :class:`loopml.automl.AutoML` and its training
    features (the rows its out-of-fold predictions are for)."""
    oof = getattr(model, "oof_predictions_", None)
    outputs = None
    if oof is not None and len(oof) == len(features):
        outputs = answers(model.task_.value, oof, model.classes_, model.threshold_)
    return profile(features, outputs=outputs)
