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


def reference_profile(features: pd.DataFrame, model: Any, target: Any = None) -> Profile:
    """The reference profile of a fitted :class:`loopml.automl.AutoML` and its training
    features (the rows its out-of-fold predictions are for), with its out-of-fold
    quality when the ``target`` is given."""
    oof = getattr(model, "oof_predictions_", None)
    outputs = None
    if oof is not None and len(oof) == len(features):
        outputs = answers(model.task_.value, oof, model.classes_, model.threshold_)
    made = profile(features, outputs=outputs)
    if outputs is not None and target is not None and len(target) == len(outputs):
        made.metrics = expected_quality(outputs, target)
    return made


def expected_quality(outputs: pd.DataFrame, target: Any) -> dict[str, float]:
    """Out-of-fold quality, in the terms production quality is measured in."""
    truth = pd.Series(np.asarray(target)).reset_index(drop=True)
    if CONFIDENCE not in outputs:
        error = outputs[PREDICTION].to_numpy(dtype=float) - truth.to_numpy(dtype=float)
        return {"mae": float(np.mean(np.abs(error))), "rmse": float(np.sqrt(np.mean(error**2)))}
    from sklearn.metrics import f1_score

    truth_text = truth.astype(str).to_numpy()
    guess = outputs[PREDICTION].astype(str).to_numpy()
    return {
        "accuracy": float(np.mean(truth_text == guess)),
        "f1_macro": float(f1_score(truth_text, guess, average="macro", zero_division=0)),
    }
