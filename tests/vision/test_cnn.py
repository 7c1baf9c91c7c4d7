"""The CNN learner of loopml.vision: learning digits within a deadline, early stopping
and temperature scaling on validation rows, the refit's parameters, weights saved
without pickles, discovery through the ``loopml.learners`` entry point, and its place
in AutoML's search of data with an image column."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from loopml.automl import AutoML, arrays
from loopml.automl import learners as registry
from loopml.automl.images import to_arrays
from loopml.automl.learners import FitContext, get_learner, image_learners, load_plugins
from loopml.automl.params import usable_learners
from loopml.core.enums import TaskType

torch = pytest.importorskip("torch")

from loopml.vision.cnn import CNNLearner, CNNModel  # noqa: E402
from loopml.vision.network import SmallResNet  # noqa: E402

N_TRAIN, N_VALID = 1000, 250
DEADLINE = 5.0  # seconds for the digits fit: the schedule is compressed to fit it
TEMPERATURES = (0.2, 5.0)  # the grid temperature scaling searches


def digit_pixels() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8 x 8 digits as uint8 0-255 images, and their labels."""
    digits = load_digits()
    return (digits.images * 255 / 16).round().astype(np.uint8), digits.target


def png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def digits() -> dict[str, np.ndarray]:
    """Digits at 16 x 16, normalised ``n x 1 x H x W`` float32 as the image view gives
    them: training, validation and test rows."""
    pixels, labels = digit_pixels()
    x = to_arrays(list(pixels), (16, 16, 1)).astype(np.float32) / 255
    x = np.ascontiguousarray(((x - x.mean()) / x.std()).transpose(0, 3, 1, 2))
    order = np.random.default_rng(0).permutation(len(labels))
    train, valid, test = np.split(order, [N_TRAIN, N_TRAIN + N_VALID])
    return {
        "X": x[train],
        "y": labels[train],
        "X_val": x[valid],
        "y_val": labels[valid],
        "X_test": x[test],
        "y_test": labels[test],
    }


@pytest.fixture(scope="module")
def learner() -> CNNLearner:
    found = get_learner("cnn")
    assert isinstance(found, CNNLearner)
    return found


def context(seconds: float, n_classes: int = 10) -> FitContext:
    # One thread: tests run in parallel, and spinning threads slow everyone down.
    return FitContext(TaskType.multiclass, n_classes, 0, 1, time.monotonic() + seconds)


def params(learner: CNNLearner, **overrides: Any) -> dict[str, Any]:
    (portfolio,) = learner.portfolio(TaskType.multiclass, N_TRAIN)
    return {**portfolio, **overrides}


def accuracy(model: CNNModel, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(model.predict(X).argmax(axis=1) == y))


@pytest.fixture(scope="module")
def trained(learner: CNNLearner, digits: dict[str, np.ndarray]) -> tuple[CNNModel, float]:
    """The portfolio configuration fitted on digits with validation rows; and its seconds."""
    started = time.monotonic()
    model = learner.fit(
        digits["X"],
        digits["y"],
        digits["X_val"],
        digits["y_val"],
        params(learner),
        context(DEADLINE),
    )
    return model, time.monotonic() - started


# --- the learner -----------------------------------------------------------------------


def test_the_cnn_learns_digits_within_its_deadline(
    trained: tuple[CNNModel, float], digits: dict[str, np.ndarray]
) -> None:
    model, seconds = trained
    assert seconds < DEADLINE + 3
    assert accuracy(model, digits["X_test"], digits["y_test"]) > 0.9
    proba = model.predict(digits["X_test"])
    assert proba.shape == (len(digits["y_test"]), 10)
    assert proba.dtype == np.float64
    assert proba.sum(axis=1) == pytest.approx(np.ones(len(proba)))
    assert model.predict(digits["X_test"][:0]).shape == (0, 10)


def test_validation_rows_give_the_best_epoch_and_a_temperature(
    learner: CNNLearner, trained: tuple[CNNModel, float], digits: dict[str, np.ndarray]
) -> None:
    model, _ = trained
    meta = model.meta
    assert meta["channels"] == 1 and meta["n_classes"] == 10 and meta["width"] == 16
    assert 1 <= meta["epochs"] <= params(learner)["epochs"]
    low, high = TEMPERATURES
    assert low <= meta["temperature"] <= high
    assert model.temperature == meta["temperature"]
    # the temperature was chosen for the validation rows' log loss: it beats none
    logits = np.log(model.predict(digits["X_val"])) * model.temperature
    y = digits["y_val"]

    def log_loss(t: float) -> float:
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-log_p[np.arange(len(y)), y].mean())

    assert log_loss(meta["temperature"]) <= log_loss(1.0) + 1e-6


def test_a_short_deadline_ends_training_on_time(
    learner: CNNLearner, digits: dict[str, np.ndarray]
) -> None:
    started = time.monotonic()
    # Three seconds: on one thread (the CNN's share of 2 busy cores), two left too few
    # epochs for the accuracy below on a loaded machine.
    model = learner.fit(
        digits["X"], digits["y"], None, None, params(learner, epochs=500), context(3)
    )
    seconds = time.monotonic() - started
    assert seconds < 5.5
    assert 1 <= model.meta["epochs"] < 500  # epochs run, stopped by the clock
    # the schedule was compressed into the time there was, not cut off mid-warm-up
    assert accuracy(model, digits["X_test"], digits["y_test"]) > 0.5


def test_early_stopping_ends_a_fit_that_stops_improving(
    learner: CNNLearner, digits: dict[str, np.ndarray]
) -> None:
    # Labels drawn at random: validation loss stops improving within a few epochs.
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 10, N_TRAIN + N_VALID)
    X, X_val = digits["X"][:300], digits["X_val"][:100]
    started = time.monotonic()
    model = learner.fit(
        X, noise[:300], X_val, noise[N_TRAIN : N_TRAIN + 100],
        params(learner, epochs=200), context(120),
    )  # fmt: skip
    seconds = time.monotonic() - started
    # 200 epochs would take about a minute; patience stops it after a handful
    assert seconds < 30
    assert 1 <= model.meta["epochs"] < 20
    low, high = TEMPERATURES
    assert low <= model.meta["temperature"] <= high
    assert model.meta["temperature"] > 1  # nothing to learn: flattened, not sharpened


def test_without_validation_rows_it_trains_the_epochs_asked_for(
    learner: CNNLearner, digits: dict[str, np.ndarray]
) -> None:
    model = learner.fit(
        digits["X"][:300],
        digits["y"][:300],
        None,
        None,
        params(learner, epochs=3, temperature=0.5),
        context(60),
    )
    assert model.meta["epochs"] == 3
    assert model.meta["temperature"] == 0.5
    assert model.temperature == 0.5


def test_full_params_average_the_folds_for_the_refit(
    learner: CNNLearner, digits: dict[str, np.ndarray]
) -> None:
    def fold(epochs: int, temperature: float | None) -> CNNModel:
        meta: dict[str, Any] = {"channels": 1, "width": 4, "n_classes": 10, "epochs": epochs}
        if temperature is not None:
            meta["temperature"] = temperature
        return CNNModel(SmallResNet(1, 4, 10), 10, meta)

    base = params(learner)
    full = learner.full_params(base, [fold(10, 0.5), fold(13, 1.5)])
    assert full["epochs"] == 13  # round(11.5 * 1.1): a little longer for the extra rows
    assert full["temperature"] == pytest.approx(1.0)
    assert {k: v for k, v in full.items() if k not in ("epochs", "temperature")} == {
        k: v for k, v in base.items() if k != "epochs"
    }
    assert learner.full_params(base, [fold(0, None)])["epochs"] == 1
    assert learner.full_params(base, [fold(4, None)])["temperature"] == 1.0

    # the refit trains that long and keeps that temperature
    short = learner.full_params(base, [fold(2, 0.4), fold(3, 0.6)])
    assert (short["epochs"], short["temperature"]) == (3, pytest.approx(0.5))
    model = learner.fit(digits["X"][:300], digits["y"][:300], None, None, short, context(60))
    assert model.meta["epochs"] == 3
    assert model.temperature == pytest.approx(0.5)


def test_dump_and_load_give_the_same_predictions(
    learner: CNNLearner, trained: tuple[CNNModel, float], digits: dict[str, np.ndarray]
) -> None:
    model, _ = trained
    files, meta = model.dump()
    assert set(files) == {"weights.npz"}
    meta = json.loads(json.dumps(meta))  # saved as JSON
    weights = arrays.from_bytes(files["weights.npz"])  # refuses pickles
    assert set(weights) == set(model.net.state_dict())
    loaded = learner.load(files, meta)
    assert loaded.temperature == model.temperature
    assert not loaded.net.training
    X = digits["X_test"]
    want, got = model.predict(X), loaded.predict(X)
    # A loaded model runs a frozen graph with batch norm folded in: float32 round-off.
    assert got == pytest.approx(want, abs=1e-5)
    top2 = np.sort(want, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-4
    assert np.array_equal(got.argmax(axis=1)[clear], want.argmax(axis=1)[clear])
    assert np.array_equal(learner.load(files, meta).predict(X), got)  # loads are identical


def test_the_cnn_reads_images_for_every_task(learner: CNNLearner) -> None:
    assert learner.available() is None
    assert learner.images_only and learner.family == "image"
    # Classes and values alike (test_cnn_regression.py covers the values).
    assert all(learner.supports(task) for task in TaskType)


# --- discovery -----------------------------------------------------------------------------


def test_the_entry_point_registers_the_cnn(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fresh process's registry: the image learners not yet imported, the entry points
    # not yet read.
    for name in ("cnn", "backbone"):
        monkeypatch.delitem(registry.REGISTRY, name, raising=False)
    monkeypatch.setattr(registry, "_plugins", [])
    assert "cnn" not in registry.REGISTRY
    found = get_learner("cnn")
    assert type(found).__name__ == "CNNLearner"
    assert type(found).__module__ == "loopml.vision.cnn"
    assert registry.REGISTRY["cnn"] is found
    # Reading the entry points for the CNN brought back the backbone's too.
    assert type(registry.REGISTRY["backbone"]).__module__ == "loopml.vision.backbone"

    for name in ("cnn", "backbone"):
        monkeypatch.delitem(registry.REGISTRY, name)
    monkeypatch.setattr(registry, "_plugins", [])
    assert sorted(image_learners()) == ["backbone", "cnn"]
    registered = dict(registry.REGISTRY)
    load_plugins()  # read once: a second call changes nothing
    assert sorted(n for n, lr in registry.REGISTRY.items() if lr.images_only) == [
        "backbone",
        "cnn",
    ]
    assert all(registry.REGISTRY[n] is registered[n] for n in registered)


def test_image_learners_come_early_for_data_with_images() -> None:
    for task in (TaskType.multiclass, TaskType.regression):
        names = usable_learners(None, task, images=True)
        assert "cnn" in names[:2]  # at most one quick tabular learner sets the bar first
        assert "linear" in names
        assert "backbone" not in names  # no weights file is named (see test_backbone.py)
        assert "cnn" not in usable_learners(None, task, images=False)


def test_without_pytorch_the_cnn_says_so_and_automl_searches_the_others(
    tmp_path: Path,
) -> None:
    script = """
import io, sys


class NoTorch:  # as if PyTorch were not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


sys.meta_path.insert(0, NoTorch())
import numpy as np, pandas as pd
from PIL import Image
from sklearn.datasets import load_digits
from loopml.automl import AutoML
from loopml.automl.learners import get_learner
from loopml.automl.params import usable_learners
from loopml.core.enums import TaskType

print(get_learner("cnn").available())
assert "cnn" not in usable_learners(None, TaskType.multiclass, images=True)
d = load_digits()
pngs = []
for p in (d.images[:150] * 255 / 16).astype(np.uint8):
    out = io.BytesIO()
    Image.fromarray(p).save(out, format="PNG")
    pngs.append(out.getvalue())
model = AutoML(learners=["linear"], n_folds=3, max_trials=1, report=False, n_jobs=1)
model.fit(pd.DataFrame({"image": pngs}), d.target[:150])
print(sorted(set(model.leaderboard_["learner"])))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    why, learners = done.stdout.strip().splitlines()
    assert "pip install 'loopml[vision]'" in why
    assert "cnn" not in learners


# --- in AutoML -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image_frame() -> tuple[pd.DataFrame, np.ndarray]:
    pixels, labels = digit_pixels()
    order = np.random.default_rng(1).permutation(len(labels))
    return pd.DataFrame({"image": [png(pixels[i]) for i in order]}), labels[order]


def test_automl_with_an_image_column_searches_the_cnn_early(
    image_frame: tuple[pd.DataFrame, np.ndarray],
) -> None:
    X, y = image_frame
    # Two searched trials (no clock cuts a bounded search's fits short): the CNN is one.
    model = AutoML(time_budget=30, max_trials=2, n_folds=3, seed=0, n_jobs=1, report=False)
    model.fit(X.head(300), y[:300])
    board = model.leaderboard_
    searched = board[~board["baseline"] & (board["learner"] != "ensemble")]
    assert len(searched) == 2
    (cnn,) = board[board["learner"] == "cnn"].to_dict(orient="records")
    assert cnn["status"] == "ok", cnn["error"]
    assert np.isfinite(cnn["score"])
    assert cnn["score"] < 1.0  # log loss: far better than the prior's 2.3
    said = model.predict(X.iloc[1000:])
    assert np.mean(said == y[1000:]) > 0.9


def test_a_saved_automl_with_a_cnn_member_predicts_alike(
    image_frame: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    X, y = image_frame
    model = AutoML(
        learners=["cnn"], metric="accuracy", max_trials=1, n_folds=2, seed=0, n_jobs=1,
        report=False,
    ).fit(X.head(300), y[:300])  # fmt: skip
    learners = {m.learner for m in model.predictor_.members}
    assert "cnn" in learners, model.leaderboard_
    path = tmp_path / "model.zip"
    model.save(path)
    loaded = AutoML.load(path, expected_hash=model.content_hash_)
    assert {m.learner for m in loaded.predictor_.members} == learners
    held_out = X.iloc[1000:1300]
    assert np.array_equal(loaded.predict(held_out), model.predict(held_out))
    assert loaded.predict_proba(held_out) == pytest.approx(model.predict_proba(held_out), abs=1e-6)
    assert np.mean(loaded.predict(held_out) == y[1000:1300]) > 0.9


def test_threads_asking_for_the_cnn_at_once_all_get_it() -> None:
    """The first lookup imports the plugin (torch: seconds); threads arriving meanwhile
    wait for it instead of finding no CNN."""
    script = (
        "import threading\n"
        "from loopml.automl.learners import get_learner, image_learners\n"
        "got = {}\n"
        "def ask(i):\n"
        "    try:\n"
        "        got[i] = type(get_learner('cnn')).__name__ if i % 2 else image_learners()\n"
        "    except Exception as exc:\n"
        "        got[i] = repr(exc)\n"
        "threads = [threading.Thread(target=ask, args=(i,)) for i in range(6)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "print(sorted(map(str, got.values())))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    # Importing loopml.vision (either entry point does) registers the CNN, then the backbone.
    assert out.strip() == str(["CNNLearner"] * 3 + ["['cnn', 'backbone']"] * 3), out
