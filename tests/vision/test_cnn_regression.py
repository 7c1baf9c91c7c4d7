"""The CNN learner on numeric targets: one output trained on the standardised target and
returned in the target's scale, early stopping that waits for the learning rate to come
down, models that save and load, and ``AutoML(task="regression")`` on an image column."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from loopml.automl import AutoML
from loopml.automl.images import to_arrays
from loopml.automl.learners import FitContext, get_learner
from loopml.core.enums import TaskType

torch = pytest.importorskip("torch")

from loopml.vision import cnn as cnn_module  # noqa: E402
from loopml.vision.cnn import CNNLearner, CNNModel  # noqa: E402

N_TRAIN, N_VALID = 1000, 250
DEADLINE = 6.0  # seconds for the digits fit: its schedule is compressed to fit them


def digit_pixels() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8 x 8 digits as uint8 0-255 images, and their labels."""
    digits = load_digits()
    return (digits.images * 255 / 16).round().astype(np.uint8), digits.target


def value_of(labels: np.ndarray) -> np.ndarray:
    """The regression target: the digit, far from unit scale (mean ~145, std ~29), so
    that predictions in the wrong scale would be plain."""
    return 100.0 + 10.0 * labels


@pytest.fixture(scope="module")
def digits() -> dict[str, np.ndarray]:
    """Digits at 16 x 16, normalised ``n x 1 x H x W`` float32 as the image view gives
    them, with their values: training, validation and test rows."""
    pixels, labels = digit_pixels()
    x = to_arrays(list(pixels), (16, 16, 1)).astype(np.float32) / 255
    x = np.ascontiguousarray(((x - x.mean()) / x.std()).transpose(0, 3, 1, 2))
    y = value_of(labels)
    order = np.random.default_rng(0).permutation(len(labels))
    train, valid, test = np.split(order, [N_TRAIN, N_TRAIN + N_VALID])
    return {
        "X": x[train], "y": y[train], "X_val": x[valid], "y_val": y[valid],
        "X_test": x[test], "y_test": y[test],
    }  # fmt: skip


@pytest.fixture(scope="module")
def learner() -> CNNLearner:
    found = get_learner("cnn")
    assert isinstance(found, CNNLearner)
    return found


def context(seconds: float) -> FitContext:
    # One thread: tests run in parallel, and spinning threads slow everyone down.
    return FitContext(TaskType.regression, 0, 0, 1, time.monotonic() + seconds)


def params(learner: CNNLearner, **overrides: Any) -> dict[str, Any]:
    (portfolio,) = learner.portfolio(TaskType.regression, N_TRAIN)
    return {**portfolio, **overrides}


def rmse(predicted: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((predicted - y) ** 2)))


@pytest.fixture(scope="module")
def trained(learner: CNNLearner, digits: dict[str, np.ndarray]) -> CNNModel:
    """The portfolio configuration fitted on the digits' values with validation rows."""
    return learner.fit(
        digits["X"], digits["y"], digits["X_val"], digits["y_val"], params(learner),
        context(DEADLINE),
    )  # fmt: skip


def test_the_cnn_learns_values_in_the_targets_scale(
    trained: CNNModel, digits: dict[str, np.ndarray]
) -> None:
    X, y = digits["X_test"], digits["y_test"]
    said = trained.predict(X)
    assert said.shape == (len(y),)  # values, not a column per class
    assert said.dtype == np.float64 and np.isfinite(said).all()
    # In the target's scale: standardised outputs would sit near 0 with unit spread.
    assert abs(said.mean() - y.mean()) < 0.3 * y.std()
    assert 0.5 * y.std() < said.std() < 1.5 * y.std()
    # Far better than the mean: about 0.4 of the spread in 6 s on one thread.
    assert rmse(said, y) < 0.65 * y.std()
    assert trained.predict(X[:0]).shape == (0,)


def test_the_model_keeps_the_targets_scale_and_no_classes(
    trained: CNNModel, digits: dict[str, np.ndarray]
) -> None:
    meta = trained.meta
    assert meta["n_classes"] == 0 and trained.n_classes == 0
    assert meta["y_mean"] == pytest.approx(digits["y"].mean())
    assert meta["y_std"] == pytest.approx(digits["y"].std())
    assert meta["temperature"] == 1.0  # no softmax to calibrate
    assert 1 <= meta["epochs"] <= params(get_learner("cnn"))["epochs"]


def test_dump_and_load_give_the_same_values(
    learner: CNNLearner, trained: CNNModel, digits: dict[str, np.ndarray]
) -> None:
    files, meta = trained.dump()
    meta = json.loads(json.dumps(meta))  # saved as JSON
    loaded = learner.load(files, meta)
    assert loaded.n_classes == 0
    X = digits["X_test"]
    want, got = trained.predict(X), loaded.predict(X)
    assert got.shape == want.shape
    # A loaded model runs a frozen graph with batch norm folded in: float32 round-off,
    # here in the target's scale (about 145).
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-3)


def test_early_stopping_waits_for_half_the_schedule(
    learner: CNNLearner, digits: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Targets drawn at random: the validation loss stops improving at once, and with a
    # classifier's patience the fit would end after about six epochs, keeping the first.
    rng = np.random.default_rng(0)
    X, X_val = digits["X"][:256], digits["X_val"][:64]
    y, y_val = rng.normal(size=256), rng.normal(size=64)
    epochs = []  # the validation rows are scored once per epoch, from half-way on
    scored = cnn_module._logits

    def counting(net: Any, rows: np.ndarray, device: Any) -> np.ndarray:
        if len(rows) == len(X_val):
            epochs.append(1)
        return scored(net, rows, device)

    monkeypatch.setattr(cnn_module, "_logits", counting)
    model = learner.fit(X, y, X_val, y_val, params(learner, epochs=24), context(120))
    assert model.meta["epochs"] >= 12  # the kept epoch is in the second half
    assert 1 <= len(epochs) <= 13  # scored only from the half-way epoch (12 of 24) on
    assert np.isfinite(model.predict(digits["X_test"][:10])).all()


def png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def test_automl_regresses_on_an_image_column() -> None:
    pixels, labels = digit_pixels()
    order = np.random.default_rng(1).permutation(len(labels))[:400]
    X = pd.DataFrame({"image": [png(pixels[i]) for i in order]})
    y = value_of(labels[order])
    # Three folds: with two, 120 rows fit each fold's CNN (one batch an epoch) and its
    # validation loss is best after the first epoch, which the refit then repeats.
    model = AutoML(
        task="regression", learners=["cnn"], max_trials=1, n_folds=3, seed=0, n_jobs=1,
        report=False,
    ).fit(X.head(300), y[:300])  # fmt: skip
    board = model.leaderboard_
    (trial,) = board[board["learner"] == "cnn"].to_dict(orient="records")
    assert trial["status"] == "ok", trial["error"]
    assert np.isfinite(trial["score"])
    (prior,) = board[board["model"] == "baseline_prior"].to_dict(orient="records")
    assert trial["score"] < prior["score"]  # RMSE: better than the mean
    assert "cnn" in [m.learner for m in model.predictor_.members]
    said = model.predict(X.iloc[300:])
    assert said.shape == (100,)
    assert said.dtype.kind == "f" and np.isfinite(said).all()
    assert rmse(said, y[300:]) < 0.75 * y.std()  # about 0.5
