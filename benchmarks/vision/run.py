"""Digits as images: the CNN alone, the classic-feature learners alone, and AutoML's
default choice, at equal time budgets; test accuracy, log loss and fit seconds.

    .venv/bin/python -m benchmarks.vision.run --budgets 30 60

The 1,797 scikit-learn digits (8 x 8, upscaled to 16 x 16 by the image plan) as PNG
bytes, a stratified 75/25 split (seed 0), 2 threads. Results print as a Markdown table.
"""

from __future__ import annotations

import argparse
import io
import json
import time

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from loopml.automl import AutoML

SYSTEMS = {
    "cnn only": ["cnn"],
    "classic features (linear, lightgbm)": ["linear", "lightgbm"],
    "AutoML default (cnn first, then tabular)": None,
}


def digits_as_png() -> tuple[pd.DataFrame, np.ndarray]:
    digits = load_digits()
    images = []
    for pixels in digits.images:
        buffer = io.BytesIO()
        Image.fromarray((pixels * 255 / 16).astype(np.uint8)).save(buffer, "PNG")
        images.append(buffer.getvalue())
    return pd.DataFrame({"image": pd.Series(images, dtype=object)}), digits.target


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budgets", type=float, nargs="+", default=[30.0, 60.0])
    args = parser.parse_args()
    X, y = digits_as_png()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    X_tr, X_te = X_tr.reset_index(drop=True), X_te.reset_index(drop=True)
    print("| budget | system | test accuracy | test log loss | fit s | ensemble (weights) |")
    print("|---|---|---|---|---|---|")
    for budget in args.budgets:
        for name, learners in SYSTEMS.items():
            started = time.monotonic()
            model = AutoML(time_budget=budget, seed=0, n_jobs=2, learners=learners, report=False)
            model.fit(X_tr, y_tr)
            seconds = time.monotonic() - started
            proba = model.predict_proba(X_te)
            accuracy = float((model.classes_[proba.argmax(axis=1)] == y_te).mean())
            loss = float(-np.log(np.clip(proba[np.arange(len(y_te)), y_te], 1e-15, 1)).mean())
            board = model.leaderboard_
            chosen = json.loads(board[board["model"] == "ensemble"].iloc[0]["params"])["members"]
            by_trial = dict(zip(board["trial"], board["learner"], strict=True))
            members = ", ".join(
                f"{by_trial.get(m['trial'], '?')} {m['weight']:.2f}" for m in chosen
            )
            row = [f"{budget:g} s", name, f"{accuracy:.4f}", f"{loss:.4f}", f"{seconds:.1f}"]
            print("| " + " | ".join([*row, members]) + " |")


if __name__ == "__main__":
    main()
