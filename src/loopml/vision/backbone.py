"""A pretrained backbone learner: a ResNet from a local weights file the user names
(timm's or torchvision's), its pooled features, and a linear head fitted on them.

Frozen features and a linear head are what a CPU can afford at AutoML budgets: one
forward pass per image, shared by every fold and configuration through a cache of
features by image content. Nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from loopml.automl import arrays
from loopml.automl.learners.base import FitContext, Learner, timing
from loopml.automl.learners.sklearn_models import LinearLearner, LinearModel
from loopml.core.enums import TaskType
from loopml.core.errors import InvalidInput

_IMPORT_SECONDS = 3.0  # importing PyTorch on 2 cores
_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)  # ImageNet's, as timm's configs
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
_BATCH = 128
_CACHE_ROWS = 100_000  # features kept per (weights, resolution): ~200 MB for ResNet-18
_RESOLUTIONS = [64, 96, 128]

_lock = threading.Lock()
_networks: dict[tuple[str, int, int], tuple[Any, Any, str]] = {}
_features: dict[tuple[str, int], dict[bytes, np.ndarray]] = {}


def read_weights(path: str | Path) -> tuple[dict[str, Any], str]:
    """The tensors of a ``.safetensors`` file or a PyTorch state dict (``.pth``, ``.pt``,
    ``.bin``, read with ``weights_only``: no pickled code runs), and their SHA-256."""
    import torch

    file = Path(path).expanduser()
    if not file.is_file():
        raise InvalidInput(f"backbone weights file not found: {file}", field="backbone")
    data = file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load as load_safetensors

            state: Any = load_safetensors(data)
        else:
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InvalidInput(
            f"{file.name} is neither a safetensors file nor a PyTorch state dict: {exc}",
            field="backbone",
        ) from None
    for key in ("state_dict", "model"):  # checkpoints that wrap the weights
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise InvalidInput(f"{file.name} holds no tensors by name", field="backbone")
    return {k.removeprefix("module."): v for k, v in state.items()}, digest


def network(path: str | Path | None) -> tuple[Any, Any, str]:
    """The feature network of a weights file (built once per file and version), its
    layout and the file's digest."""
    from loopml.vision.resnet import build

    if path is None:
        raise InvalidInput("no backbone weights file is named", field="backbone")
    file = Path(path).expanduser()
    try:
        stat = file.stat()
    except OSError:
        raise InvalidInput(f"backbone weights file not found: {file}", field="backbone") from None
    key = (str(file.resolve()), stat.st_mtime_ns, stat.st_size)
    with _lock:
        if key not in _networks:
            import torch

            weights, digest = read_weights(file)
            net, layout = build(weights, file.name)
            if torch.cuda.is_available():  # the search's passes over the images
                net = net.to("cuda")
            _networks[key] = (net, layout, digest)
        return _networks[key]


def features(
    net: Any, digest: str, X: np.ndarray, resolution: int, keep: bool = True
) -> np.ndarray:
    """Pooled features of ``n x C x H x W`` images with values in [0, 1]; images seen
    before with these weights and resolution are looked up, not run again. Without
    ``keep``, nothing is looked up or kept."""
    keys = [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in X]
    with _lock:
        cache = _features.setdefault((digest, resolution), {}) if keep else {}
        # A timed prediction runs the network as for new images.
        known = {} if timing() else {k: cache[k] for k in keys if k in cache}
    todo = [i for i, k in enumerate(keys) if k not in known]
    ran = dict(zip([keys[i] for i in todo], _forward(net, X[todo], resolution), strict=True))
    if keep and ran:
        with _lock:
            if len(cache) + len(ran) > _CACHE_ROWS:
                cache.clear()
            cache.update(ran)
    return np.stack([known[k] if k in known else ran[k] for k in keys])


def _forward(net: Any, X: np.ndarray, resolution: int) -> np.ndarray:
    """The network's pooled features of images resized to ``resolution`` and normalised
    as ImageNet's networks expect."""
    import torch
    from torch.nn import functional as F

    device = next(net.parameters()).device
    mean = torch.from_numpy(_MEAN).view(1, 3, 1, 1).to(device)
    std = torch.from_numpy(_STD).view(1, 3, 1, 1).to(device)
    found = []
    with torch.inference_mode():
        for start in range(0, len(X), _BATCH):
            rows = np.ascontiguousarray(X[start : start + _BATCH], dtype=np.float32)
            batch = torch.from_numpy(rows).to(device)
            if batch.shape[1] == 1:  # grey images: the same plane on each channel
                batch = batch.expand(-1, 3, -1, -1)
            batch = F.interpolate(
                batch, size=(resolution, resolution), mode="bilinear", align_corners=False
            )
            found.append(net((batch - mean) / std).float().cpu().numpy())
    return np.concatenate(found) if found else np.zeros((0, 0), dtype=np.float32)


class BackboneModel:
    """Frozen backbone features, standardised, into a linear head.

    A model being searched and refitted keeps the features of the images it sees (folds
    and configurations share them); a loaded one (a deployment's) keeps none: the
    images it is asked about are new ones.
    """

    def __init__(
        self, net: Any, digest: str, meta: dict[str, Any], scale: dict[str, np.ndarray],
        head: LinearModel, cache: bool = True,
    ) -> None:  # fmt: skip
        self.net, self.digest, self.meta, self.scale, self.head = net, digest, meta, scale, head
        self.cache = cache

    def predict(self, X: np.ndarray) -> np.ndarray:
        found = features(self.net, self.digest, X, int(self.meta["resolution"]), self.cache)
        return self.head.predict((found - self.scale["mean"]) / self.scale["std"])

    def dump(self) -> tuple[dict[str, bytes], dict[str, Any]]:
        from loopml.vision.network import state_arrays

        files, head_meta = self.head.dump()
        files["backbone.npz"] = arrays.to_bytes(state_arrays(self.net))
        files["scale.npz"] = arrays.to_bytes(self.scale)
        return files, {**self.meta, "head": head_meta, "digest": self.digest}


class BackboneLearner(Learner):
    """A pretrained ResNet (weights from a local file) with a linear head.

    Parameters
    ----------
    weights : str, optional
        The weights file; without one the learner is unavailable (AutoML's ``backbone``
        names it).
    """

    name = "backbone"
    family = "pixels"
    cost = 2.0
    images_only = True

    def __init__(self, weights: str | None = None) -> None:
        self.weights = weights

    def with_backbone(self, weights: str) -> BackboneLearner:
        return BackboneLearner(weights)

    def available(self) -> str | None:
        try:
            found = importlib.util.find_spec("torch") is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return "PyTorch is not installed: pip install 'loopml[vision]'"
        if self.weights is None:
            return "no backbone weights file is named (AutoML(backbone=...))"
        return None

    def setup_seconds(self) -> float:
        return 0.0 if "torch" in sys.modules else _IMPORT_SECONDS

    def prepare(self) -> None:
        if self.weights is not None:
            network(self.weights)

    def portfolio(self, task: TaskType, n_rows: int) -> list[dict[str, Any]]:
        # Hundreds of features from a few hundred rows: a linear probe wants a strong
        # penalty (ridge's alpha is 1 / C).
        strength = 0.01 if task is TaskType.regression else 0.1
        return [{"weights": self.weights, "resolution": 96, "C": strength}]

    def space(self, trial: optuna.Trial, task: TaskType, n_rows: int) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "resolution": self.suggest(trial, "resolution", _RESOLUTIONS),
            "C": self.suggest(trial, "C", 1e-3, 1e2, log=True),
        }

    def fit(self, X, y, X_val, y_val, params, ctx: FitContext) -> BackboneModel:
        import torch

        net, layout, digest = network(params["weights"])
        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, ctx.threads(X)))
        try:
            found = features(net, digest, X, int(params["resolution"]))
        finally:  # process-wide: leave it as found
            torch.set_num_threads(threads)
        scale = {"mean": found.mean(axis=0), "std": np.maximum(found.std(axis=0), 1e-6)}
        head = LinearLearner().fit(
            (found - scale["mean"]) / scale["std"], y, None, None, {"C": params["C"]}, ctx
        )
        meta = {
            "blocks": list(layout.blocks), "bottleneck": layout.bottleneck,
            "architecture": layout.name, "resolution": int(params["resolution"]),
        }  # fmt: skip
        return BackboneModel(net, digest, meta, scale, head)

    def load(self, files: dict[str, bytes], meta: dict[str, Any]) -> BackboneModel:
        import torch

        from loopml.vision.resnet import Layout, ResNetFeatures

        blocks = tuple(int(b) for b in meta["blocks"])
        net = ResNetFeatures(
            Layout((blocks[0], blocks[1], blocks[2], blocks[3]), bool(meta["bottleneck"]))
        )
        state = arrays.from_bytes(files["backbone.npz"])
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
        head = LinearLearner().load(files, meta["head"])
        scale = arrays.from_bytes(files["scale.npz"])
        meta = dict(meta)
        return BackboneModel(net.eval(), str(meta["digest"]), meta, scale, head, cache=False)
