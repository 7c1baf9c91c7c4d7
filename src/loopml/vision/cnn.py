"""The CNN learner: a small residual network trained with augmentation, label smoothing,
a one-cycle schedule and early stopping, within the fit's deadline."""

from __future__ import annotations

import copy
import importlib.util
import math
import sys
import time
import warnings
from typing import Any

import numpy as np
import optuna

from loopml.automl import arrays
from loopml.automl.learners.base import FitContext, Learner
from loopml.core.enums import TaskType

_BATCH = 128
_IMPORT_SECONDS = 3.0  # importing PyTorch: 2.3 to 3.3 s of its CPU build on 2 cores
_PATIENCE = 5
_EPOCHS = 20


class CNNModel:
    """A trained network; predicts class probabilities of ``n x C x H x W`` images, or
    values (regression: the network's one output, in the target's scale).

    A model loaded from its files (the one a deployment serves) predicts through a frozen
    TorchScript graph (batch norm folded into the convolutions), traced from the weights on
    first use: about twice as fast on CPU for batches. Nothing in the files is run.
    """

    def __init__(self, net: Any, n_classes: int, meta: dict[str, Any], compile: bool = False):
        self.net, self.n_classes, self.meta = net, n_classes, meta
        self.temperature = float(meta.get("temperature", 1.0))
        self.compile = compile
        self._runner: Any = None
        self.net.eval()

    def predict(self, X: np.ndarray) -> np.ndarray:
        import torch

        device = next(self.net.parameters()).device
        out = []
        with torch.inference_mode():
            for start in range(0, len(X), 512):
                batch = torch.from_numpy(np.ascontiguousarray(X[start : start + 512]))
                batch = batch.to(device, dtype=torch.float32)
                logits = self._run(batch)
                if not self.n_classes:
                    values = logits[:, 0].double().cpu().numpy()
                    out.append(values * self.meta["y_std"] + self.meta["y_mean"])
                    continue
                logits = logits / self.temperature
                out.append(torch.softmax(logits, dim=1).double().cpu().numpy())
        if not out:
            return np.zeros(0) if not self.n_classes else np.zeros((0, self.n_classes))
        return np.concatenate(out)

    def _run(self, batch: Any) -> Any:
        if self.compile and self._runner is None:
            import torch

            try:
                with warnings.catch_warnings():  # TorchScript's deprecation notices
                    warnings.simplefilter("ignore")
                    traced = torch.jit.trace(self.net, batch[:1], check_trace=False)
                    self._runner = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
            except Exception:  # tracing is an optimisation: the network itself still works
                self.compile = False
        return self._runner(batch) if self._runner is not None else self.net(batch)

    def dump(self) -> tuple[dict[str, bytes], dict[str, Any]]:
        from loopml.vision.network import state_arrays

        return {"weights.npz": arrays.to_bytes(state_arrays(self.net))}, dict(self.meta)


class CNNLearner(Learner):
    """A compact residual CNN on the first image column: classes (cross-entropy with
    label smoothing) or values (mean squared error on the standardised target)."""

    name = "cnn"
    family = "image"
    cost = 3.0
    anytime = True  # its schedule completes by the deadline: never too slow to start
    early_stopping = True
    early_stop_rows = 50  # held-out rows calibrate it (temperature), whatever the size
    images_only = True

    def available(self) -> str | None:
        # Found, not imported: importing PyTorch takes seconds, which a search with no
        # time for the CNN (an 8 s budget) need not spend. prepare() imports it.
        try:
            found = importlib.util.find_spec("torch") is not None
        except (ImportError, ValueError):
            found = False
        return None if found else "PyTorch is not installed: pip install 'loopml[vision]'"

    def setup_seconds(self) -> float:
        return 0.0 if "torch" in sys.modules else _IMPORT_SECONDS

    def prepare(self) -> None:
        import torch  # noqa: F401

        import loopml.vision.network  # noqa: F401

    def portfolio(self, task: TaskType, n_rows: int) -> list[dict[str, Any]]:
        config = {"width": 16, "lr": 0.004, "weight_decay": 5e-4, "smoothing": 0.1}
        return [{**config, "flip": "auto", "epochs": _EPOCHS}]

    def space(self, trial: optuna.Trial, task: TaskType, n_rows: int) -> dict[str, Any]:
        return {
            "width": self.suggest(trial, "width", [16, 24, 32]),
            "lr": self.suggest(trial, "lr", 1e-3, 1e-2, log=True),
            "weight_decay": self.suggest(trial, "weight_decay", 1e-5, 1e-2, log=True),
            "smoothing": self.suggest(trial, "smoothing", 0.0, 0.2),
            "flip": self.suggest(trial, "flip", ["auto", "no"]),
            "epochs": self.suggest(trial, "epochs", 10, 40),
        }

    def full_params(self, params: dict[str, Any], fold_models: list[Any]) -> dict[str, Any]:
        """The refit trains as long as the folds' best epochs, a little longer for the
        extra rows, and keeps their mean calibration temperature."""
        epochs = [int(m.meta["epochs"]) for m in fold_models]
        temperature = float(np.mean([float(m.meta.get("temperature", 1.0)) for m in fold_models]))
        return {
            **params,
            "epochs": max(1, round(float(np.mean(epochs)) * 1.1)),
            "temperature": temperature,
        }

    def fit(self, X, y, X_val, y_val, params, ctx: FitContext) -> CNNModel:
        import torch

        threads = torch.get_num_threads()
        # ctx.threads: one for small image sets. On 2 cores, an epoch of 910 digits took
        # 0.36 s with one thread, 0.20 s with two, and 11.8 s with two while another
        # process wanted a core (each layer's workers wait for each other).
        torch.set_num_threads(max(1, ctx.threads(X)))
        try:
            return self._fit(X, y, X_val, y_val, params, ctx)
        finally:  # the setting is process-wide: leave it as found
            torch.set_num_threads(threads)

    def _fit(self, X, y, X_val, y_val, params, ctx: FitContext) -> CNNModel:
        import torch
        from torch import nn

        from loopml.vision.network import AdamW, SmallResNet, augment

        torch.manual_seed(ctx.seed)
        generator = torch.Generator().manual_seed(ctx.seed)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        channels, width = int(X.shape[1]), int(params.get("width", 16))
        regression = ctx.task is TaskType.regression
        n_classes = 0 if regression else max(ctx.n_classes, 2)
        net = SmallResNet(channels, width, max(n_classes, 1)).to(device)
        flip = params.get("flip", "auto") == "auto" and channels == 3  # photos, not glyphs
        epochs = int(params.get("epochs", _EPOCHS))
        lr = float(params["lr"])
        optimiser = AdamW(net.parameters(), weight_decay=float(params["weight_decay"]))
        images = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        target = _Target(y, regression)
        if regression:
            mse = nn.MSELoss()
            loss_of: Any = lambda out, t: mse(out[:, 0], t)  # noqa: E731
        else:
            loss_of = nn.CrossEntropyLoss(label_smoothing=float(params.get("smoothing", 0.0)))
        labels = target.tensor(y)
        steps = epochs * max(1, math.ceil(len(X) / _BATCH))
        clock = _Clock(steps, ctx.time_left())
        best: tuple[float, int, dict[str, Any]] | None = None
        done = waited = 0
        while not clock.finished() and done < epochs:
            net.train()
            order = torch.randperm(len(images), generator=generator)
            for start in range(0, len(order), _BATCH):
                pick = order[start : start + _BATCH]
                if len(pick) < 2 or clock.finished():  # batch norm needs two images
                    continue
                optimiser.lr = one_cycle(clock.progress(), lr)
                batch = augment(images[pick].to(device), flip, generator)
                optimiser.zero_grad()
                loss_of(net(batch), labels[pick].to(device)).backward()
                optimiser.step()
                clock.step()
            done += 1
            # A regression's loss swings while the learning rate is high: its best epoch is
            # looked for in the second half of the schedule only (the last epoch is there).
            if X_val is None or (regression and clock.progress() < 0.5):
                continue
            score = target.loss(_logits(net, X_val, device), y_val)
            if best is None or score < best[0] - 1e-4:
                best, waited = (score, done, copy.deepcopy(net.state_dict())), 0
            elif (waited := waited + 1) >= _PATIENCE:
                break
        temperature = float(params.get("temperature", 1.0))
        if best is not None:
            net.load_state_dict(best[2])
            done = best[1]
            if not regression:
                temperature = _temperature(_logits(net, X_val, device), y_val)
        meta = {
            "channels": channels, "width": width, "n_classes": n_classes, "epochs": done,
            "temperature": temperature, "y_mean": target.mean, "y_std": target.std,
        }  # fmt: skip
        return CNNModel(net, n_classes, meta)

    def load(self, files: dict[str, bytes], meta: dict[str, Any]) -> CNNModel:
        import torch

        from loopml.vision.network import SmallResNet

        n_classes = int(meta["n_classes"])
        net = SmallResNet(int(meta["channels"]), int(meta["width"]), max(n_classes, 1))
        weights = arrays.from_bytes(files["weights.npz"])
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
        return CNNModel(net, n_classes, dict(meta), compile=True)


class _Target:
    """Labels as class codes, or values standardised by the training rows' mean and
    deviation (a network learns a target of unit scale far more easily)."""

    def __init__(self, y: np.ndarray, regression: bool) -> None:
        self.regression = regression
        values = np.asarray(y, dtype=np.float64)
        self.mean = float(values.mean()) if regression and len(values) else 0.0
        self.std = float(values.std()) if regression and values.std() > 0 else 1.0

    def tensor(self, y: np.ndarray) -> Any:
        import torch

        if not self.regression:
            return torch.from_numpy(np.asarray(y, dtype=np.int64))
        scaled = (np.asarray(y, dtype=np.float64) - self.mean) / self.std
        return torch.from_numpy(scaled.astype(np.float32))

    def loss(self, outputs: np.ndarray, y: np.ndarray) -> float:
        """Validation loss: log loss of classes, or mean squared error in unit scale."""
        if not self.regression:
            return _nll(outputs, y, 1.0)
        scaled = (np.asarray(y, dtype=np.float64) - self.mean) / self.std
        return float(np.mean((outputs[:, 0] - scaled) ** 2))


class _Clock:
    """Training progress from 0 to 1: the larger of the steps taken and the time spent,
    so that the learning-rate schedule completes by the deadline."""

    def __init__(self, steps: int, seconds: float) -> None:
        self.steps, self.seconds = steps, max(seconds, 1e-3)
        self.started, self.taken = time.monotonic(), 0

    def step(self) -> None:
        self.taken += 1

    def progress(self) -> float:
        return max(self.taken / self.steps, (time.monotonic() - self.started) / self.seconds)

    def finished(self) -> bool:
        return self.progress() >= 1.0


def one_cycle(progress: float, peak: float) -> float:
    """Warm up from a tenth of ``peak`` over the first quarter, then cosine down to 0."""
    if progress < 0.25:
        return peak * (0.1 + 0.9 * progress / 0.25)
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - 0.25) / 0.75)))


def _logits(net: Any, X: np.ndarray, device: Any) -> np.ndarray:
    import torch

    net.eval()
    out = []
    with torch.inference_mode():  # in batches: activations of every row at once can be GBs
        for start in range(0, len(X), 512):
            part = np.ascontiguousarray(X[start : start + 512], dtype=np.float32)
            out.append(net(torch.from_numpy(part).to(device)).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))


def _nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(y)), np.asarray(y, dtype=np.int64)].mean())


def _temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The softmax temperature that minimises the validation log loss (label smoothing
    leaves a network under-confident; this gives its probabilities back their meaning)."""
    grid = np.exp(np.linspace(np.log(0.2), np.log(5.0), 41))
    return float(grid[int(np.argmin([_nll(logits, y, t) for t in grid]))])
