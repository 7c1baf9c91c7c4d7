"""Small data sets and fast AutoML settings shared by the automl tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from loopml.automl import AutoML

# Fast, repeatable fits: one thread, few folds, a bounded search, no report.
FAST: dict[str, Any] = {
    "time_budget": 5.0,
    "seed": 0,
    "n_jobs": 1,
    "n_folds": 3,
    "max_trials": 1,
    "learners": ["linear"],
    "report": False,
}


def automl(**overrides: Any) -> AutoML:
    """An AutoML with the FAST settings, overridden by keyword."""
    return AutoML(**{**FAST, **overrides})


def xor_frame(n: int = 240, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A binary problem trees learn and a linear model cannot: the sign of a * b."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.uniform(-1, 1, size=(n, 4)), columns=["a", "b", "c", "d"])
    y = ((X["a"] * X["b"]) > 0).astype(int).to_numpy()
    return X, y


def noise_frame(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Features and labels drawn independently: nothing to learn."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 5)), columns=["a", "b", "c", "d", "e"])
    return X, rng.integers(0, 2, n)


def linear_frame(
    n: int = 200, seed: int = 0, positive_rate: float = 0.5, noise: float = 1.0
) -> tuple[pd.DataFrame, np.ndarray]:
    """A noisy binary problem whose positive class has about ``positive_rate`` of rows."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    score = X["a"] + 0.5 * X["b"] + rng.normal(scale=noise, size=n)
    y = (score > np.quantile(score, 1 - positive_rate)).astype(int).to_numpy()
    return X, y


def messy_frame(n: int = 160, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A raw frame as it comes from a CSV: every column kind, missing values, junk columns.

    The label depends on ``amount``, ``colour`` and a word of ``comment``.
    """
    rng = np.random.default_rng(seed)
    amount = rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], n)
    good = rng.random(n) < 0.5
    words = ["ok", "fine", "later", "maybe", "soon", "today", "here", "there"]
    comment = [
        " ".join([*rng.choice(words, 3), "excellent" if g else "awful", *rng.choice(words, 2)])
        for g in good
    ]
    y = ((amount + (colour == "red") + 2 * good - 1.5) > 0).astype(int)
    X = pd.DataFrame(
        {
            "amount": np.where(rng.random(n) < 0.1, np.nan, amount),
            "amount_text": [f"{v:.3f}" for v in amount + rng.normal(scale=0.1, size=n)],
            "colour": np.where(rng.random(n) < 0.1, None, colour),
            "member": rng.random(n) < 0.3,
            "signup": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, n), "D"),
            "zip_code": [f"z{v}" for v in rng.integers(0, n // 2, n)],
            "comment": comment,
            "empty": [None] * n,
            "constant": ["same"] * n,
            "customer_id": [f"C-{i:05d}" for i in range(n)],
        }
    )
    return X, y
