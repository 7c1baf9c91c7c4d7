"""Digits as images: the CNN alone, the classic-feature learners alone, and AutoML's
default choice, at equal time budgets; test accuracy, log loss and fit seconds.

    .venv/bin/python -m benchmarks.vision.run --budgets 30 60
    .venv/bin/python -m benchmarks.vision.run --budgets 300 --cifar cifar-100-python.tar.gz
    .venv/bin/python -m benchmarks.vision.run --budgets 30 --backbone model.safetensors
    .venv/bin/python -m benchmarks.vision.run --budgets 30 60 --regression

The 1,797 scikit-learn digits (8 x 8, upscaled to 16 x 16 by the image plan) as PNG
bytes, a stratified 75/25 split (seed 0); or, with ``--cifar``, CIFAR-100's bicycles and
motorcycles (1,000 training and 200 test images, the archive's own split, as the seeds
use them). 2 threads. Results print as a Markdown table.

``--backbone`` adds the pretrained backbone learner alone and beside the default, with
the weights file named. ``--regression`` makes the target the digit's value as a number
(RMSE instead of accuracy): the CNN's regression against the classic features'.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from loopml.automl import AutoML
from loopml.data.cifar import read_cifar

CIFAR_CLASSES = ["bicycle", "motorcycle"]

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


def cifar_bikes(path: Path) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    """CIFAR-100's bicycles and motorcycles: train and test images (PNG) and labels."""
    found = read_cifar(path, path.name, classes=CIFAR_CLASSES, max_expanded=2**31)
    rows = found.table.to_pandas()
    images = pd.Series([found.images[h] for h in rows["image"]], dtype=object)
    test = np.asarray(found.predefined_test, dtype=bool)
    labels = rows["label"].to_numpy()
    X = pd.DataFrame({"image": images})
    return (
        X[~test].reset_index(drop=True), labels[~test],
        X[test].reset_index(drop=True), labels[test],
    )  # fmt: skip


def scores(model: AutoML, X_te: pd.DataFrame, y_te: np.ndarray) -> list[str]:
    """Test accuracy and log loss, or (regression) RMSE and MAE."""
    if model.task_ == "regression":
        error = model.predict(X_te).astype(float) - y_te
        return [f"{np.sqrt(np.mean(error**2)):.4f}", f"{np.mean(np.abs(error)):.4f}"]
    proba = model.predict_proba(X_te)
    assert model.classes_ is not None
    codes = np.searchsorted(model.classes_, y_te)
    accuracy = float((model.classes_[proba.argmax(axis=1)] == y_te).mean())
    loss = float(-np.log(np.clip(proba[np.arange(len(y_te)), codes], 1e-15, 1)).mean())
    return [f"{accuracy:.4f}", f"{loss:.4f}"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budgets", type=float, nargs="+", default=[30.0, 60.0])
    parser.add_argument("--cifar", type=Path, help="cifar-100-python.tar.gz, when present")
    parser.add_argument("--backbone", type=Path, help="pretrained ResNet weights (timm's)")
    parser.add_argument("--regression", action="store_true", help="regress the digit's value")
    args = parser.parse_args()
    if args.cifar is not None:
        X_tr, y_tr, X_te, y_te = cifar_bikes(args.cifar)
    else:
        X, y = digits_as_png()
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
        X_tr, X_te = X_tr.reset_index(drop=True), X_te.reset_index(drop=True)
    task = "auto"
    if args.regression:
        task, y_tr, y_te = "regression", y_tr.astype(float), y_te.astype(float)
    systems = dict(SYSTEMS)
    if args.backbone is not None:
        systems = {"backbone only": ["backbone"], **systems}
    scored = "test RMSE | test MAE" if args.regression else "test accuracy | test log loss"
    print(f"| budget | system | {scored} | fit s | predict s / 1,000 | ensemble (weights) |")
    print("|---|---|---|---|---|---|---|")
    for budget in args.budgets:
        for name, learners in systems.items():
            started = time.monotonic()
            model = AutoML(
                task=task, time_budget=budget, seed=0, n_jobs=2, learners=learners,
                backbone=args.backbone, report=False,
            )  # fmt: skip
            model.fit(X_tr, y_tr)
            seconds = time.monotonic() - started
            started = time.perf_counter()
            model.predict(X_te)  # first: a backbone's features of these images are not kept yet
            per_1000 = (time.perf_counter() - started) * 1000 / len(X_te)
            measured = scores(model, X_te, y_te)
            board = model.leaderboard_
            chosen = json.loads(board[board["model"] == "ensemble"].iloc[0]["params"])["members"]
            by_trial = dict(zip(board["trial"], board["learner"], strict=True))
            members = ", ".join(
                f"{by_trial.get(m['trial'], '?')} {m['weight']:.2f}" for m in chosen
            )
            row = [f"{budget:g} s", name, *measured, f"{seconds:.1f}", f"{per_1000:.3f}"]
            print("| " + " | ".join([*row, members]) + " |")


if __name__ == "__main__":
    main()
