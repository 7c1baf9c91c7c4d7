"""The pretrained-backbone learner of loopml.vision: ResNet weight files as timm and
torchvision write them (safetensors or a state dict), the layout read off their keys, the
errors for files that are not such weights, features cached by image content (and
computed afresh when predictions are timed), and ``AutoML(backbone=...)`` end to end:
fitting, honest prediction timings, regression, and a saved model that no longer needs
the weights file.

The weights are random (nothing is downloaded): a ResNet-18 saved with timm's key names
and classifier, so the files have the layout of timm's ``resnet18`` ``model.safetensors``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from loopml.automl import AutoML
from loopml.automl.learners import get_learner, timed_predictions
from loopml.automl.learners.base import timing
from loopml.automl.params import prediction_budget, usable_learners
from loopml.core.enums import TaskType
from loopml.core.errors import InvalidInput

torch = pytest.importorskip("torch")

from safetensors.torch import save_file  # noqa: E402

from loopml.vision import backbone  # noqa: E402
from loopml.vision.backbone import BackboneLearner, features, network, read_weights  # noqa: E402
from loopml.vision.network import SmallResNet  # noqa: E402
from loopml.vision.resnet import Layout, ResNetFeatures, build, layout_of  # noqa: E402

RESNET18 = Layout((2, 2, 2, 2), False)
N_FIT = 300  # digits the AutoML fits see; rows from HELD_OUT on are never fitted
HELD_OUT = slice(1000, 1100)


# --- weights files -------------------------------------------------------------------------


def resnet(layout: Layout, seed: int) -> ResNetFeatures:
    """A ResNet of random weights whose batch-norm statistics are not the defaults (0
    and 1), so that a loader which dropped them would change the features."""
    torch.manual_seed(seed)
    net = ResNetFeatures(layout)
    draw = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(0.1 * torch.randn(n, generator=draw))
                module.running_var.copy_(0.8 + 0.4 * torch.rand(n, generator=draw))
                module.weight.mul_(1 + 0.1 * torch.randn(n, generator=draw))
                module.bias.add_(0.05 * torch.randn(n, generator=draw))
                module.num_batches_tracked.fill_(1000)
    return net.eval()


def timm_state(net: ResNetFeatures, layout: Layout) -> dict[str, Any]:
    """``net``'s weights as timm's file holds them: the ImageNet classifier included."""
    state = {k: v.clone() for k, v in net.state_dict().items()}
    draw = torch.Generator().manual_seed(7)
    state["fc.weight"] = 0.01 * torch.randn(1000, layout.features, generator=draw)
    state["fc.bias"] = torch.zeros(1000)
    return state


@dataclass(frozen=True)
class Weights:
    net: ResNetFeatures  # the network the files were saved from
    safetensors: Path
    pth: Path  # the same weights as a wrapped DataParallel checkpoint


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Weights:
    folder = tmp_path_factory.mktemp("weights")
    net = resnet(RESNET18, seed=0)
    state = timm_state(net, RESNET18)
    save_file(state, str(folder / "model.safetensors"))
    # A training checkpoint: weights under "state_dict", names prefixed by DataParallel.
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, folder / "r18.pth")
    return Weights(net, folder / "model.safetensors", folder / "r18.pth")


def images(n: int, channels: int = 3, side: int = 24, seed: int = 0) -> np.ndarray:
    """``n x C x H x W`` float32 images in [0, 1], as the pixels view gives them."""
    return np.random.default_rng(seed).random((n, channels, side, side), dtype=np.float32)


# --- reading and building ------------------------------------------------------------------


def test_the_layout_is_read_off_the_weights(weights: Weights) -> None:
    state, digest = read_weights(weights.safetensors)
    assert digest == hashlib.sha256(weights.safetensors.read_bytes()).hexdigest()
    layout = layout_of(state, "model.safetensors")
    assert layout == RESNET18
    assert (layout.name, layout.features) == ("resnet18", 512)

    bottleneck = Layout((1, 1, 1, 1), True)
    found = layout_of(resnet(bottleneck, seed=1).state_dict(), "r.pth")
    assert found == bottleneck
    assert (found.name, found.features) == ("resnet14", 2048)
    assert Layout((3, 4, 6, 3), True).name == "resnet50"
    assert Layout((3, 4, 6, 3), False).name == "resnet34"


def test_the_built_network_gives_the_source_networks_features(weights: Weights) -> None:
    net, layout, _ = network(weights.safetensors)
    assert layout == RESNET18
    assert not net.training
    assert not any(k.startswith("fc.") for k in net.state_dict())  # the classifier is dropped
    x = torch.from_numpy(images(3, side=64))
    with torch.inference_mode():
        got, want = net(x), weights.net(x)
    assert got.shape == (3, 512)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_a_bottleneck_resnet_is_built_with_its_wider_features(tmp_path: Path) -> None:
    layout = Layout((1, 1, 1, 1), True)
    source = resnet(layout, seed=2)
    save_file(timm_state(source, layout), str(tmp_path / "model.safetensors"))
    net, found, _ = network(tmp_path / "model.safetensors")
    assert found == layout
    x = torch.from_numpy(images(2, side=64, seed=1))
    with torch.inference_mode():
        got, want = net(x), source(x)
    assert got.shape == (2, 2048)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_safetensors_and_a_wrapped_state_dict_give_the_same_features(weights: Weights) -> None:
    from_safetensors, digest_a = read_weights(weights.safetensors)
    from_pth, digest_b = read_weights(weights.pth)
    assert set(from_pth) == set(from_safetensors)  # "module." stripped, "state_dict" unwrapped
    assert all(torch.equal(from_pth[k], from_safetensors[k]) for k in from_pth)
    assert digest_a != digest_b  # the digest is of the file, which differs
    a, _, _ = network(weights.safetensors)
    b, _, _ = network(weights.pth)
    X = images(4)
    got_a = features(a, digest_a, X, 64)
    got_b = features(b, digest_b, X, 64)
    assert got_a.shape == (4, 512)
    np.testing.assert_allclose(got_a, got_b, rtol=1e-6, atol=1e-7)


def test_a_checkpoint_under_model_is_unwrapped(weights: Weights, tmp_path: Path) -> None:
    state, _ = read_weights(weights.safetensors)
    torch.save({"model": state, "epoch": 90}, tmp_path / "checkpoint.pt")
    found, _ = read_weights(tmp_path / "checkpoint.pt")
    assert set(found) == set(state)


def test_a_state_dict_without_batch_counters_loads(weights: Weights) -> None:
    state = {
        k: v for k, v in weights.net.state_dict().items() if not k.endswith("num_batches_tracked")
    }
    net, layout = build(state, "resnet18-f37072fd.pth")
    assert layout == RESNET18
    x = torch.from_numpy(images(2, side=64))
    with torch.inference_mode():
        torch.testing.assert_close(net(x), weights.net(x), rtol=0, atol=1e-6)


# --- files that are not ResNet weights ------------------------------------------------------


def refused(call: Any, *args: Any) -> str:
    """The message of the InvalidInput ``call(*args)`` raises, which must name the
    ``backbone`` parameter."""
    with pytest.raises(InvalidInput) as info:
        call(*args)
    assert info.value.field == "backbone"
    return str(info.value)


def test_a_missing_weights_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.safetensors"
    assert "not found" in refused(read_weights, missing)
    assert "nowhere.safetensors" in refused(network, missing)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("model.safetensors", b"\x00" * 8 + b"not a header"),
        ("model.safetensors", np.random.default_rng(0).bytes(4096)),
        ("model.pth", np.random.default_rng(1).bytes(4096)),
        ("model.bin", b"PK\x03\x04 not a zip"),
    ],
)
def test_a_file_that_is_not_weights_is_refused(tmp_path: Path, name: str, content: bytes) -> None:
    file = tmp_path / name
    file.write_bytes(content)
    message = refused(network, file)
    assert "neither a safetensors file nor a PyTorch state dict" in message
    assert name in message


def test_a_file_without_named_tensors_is_refused(tmp_path: Path) -> None:
    torch.save([torch.zeros(3), torch.ones(3)], tmp_path / "list.pth")
    assert "holds no tensors by name" in refused(read_weights, tmp_path / "list.pth")
    torch.save({"conv1.weight": torch.zeros(3), "note": "text"}, tmp_path / "mixed.pth")
    assert "holds no tensors by name" in refused(read_weights, tmp_path / "mixed.pth")


class _Trap:
    """Unpickling this opens (creates) a file: a stand-in for code hidden in weights."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return open, (str(self.marker), "w")


def test_a_pickle_that_would_run_code_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    torch.save({"conv1.weight": _Trap(marker)}, tmp_path / "evil.pth")
    refused(read_weights, tmp_path / "evil.pth")
    assert not marker.exists()


def test_weights_of_another_network_are_refused(tmp_path: Path) -> None:
    save_file(SmallResNet(3, 8, 10).state_dict(), str(tmp_path / "small.safetensors"))
    message = refused(network, tmp_path / "small.safetensors")
    assert "does not hold ResNet weights" in message
    assert "stages." in message  # some of the file's own keys, to see what it holds


def test_a_resnet_with_another_stem_is_refused(weights: Weights) -> None:
    state = dict(weights.net.state_dict())
    state["conv1.weight"] = torch.zeros(64, 1, 7, 7)  # a one-channel stem
    assert "does not hold ResNet weights" in refused(layout_of, state, "grey.pth")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("remove", "missing: layer2.1.conv2.weight"),
        ("reshape", "misshapen: layer3.0.conv1.weight"),
        ("add", "unexpected: layer1.0.se.fc.weight"),
    ],
)
def test_a_resnet_that_differs_names_the_tensors_at_fault(
    weights: Weights, change: str, named: str
) -> None:
    state = dict(weights.net.state_dict())
    if change == "remove":
        del state["layer2.1.conv2.weight"]
    elif change == "reshape":
        state["layer3.0.conv1.weight"] = torch.zeros(256, 64, 3, 3)
    else:
        state["layer1.0.se.fc.weight"] = torch.zeros(4, 64)  # a squeeze-excite ResNet
    message = refused(build, state, "model.safetensors")
    assert "model.safetensors is not a plain resnet18" in message
    assert named in message


# --- the feature cache --------------------------------------------------------------------


def test_features_of_images_seen_before_are_looked_up_unless_timed(weights: Weights) -> None:
    net = weights.net
    digest = f"test-{uuid.uuid4()}"  # a cache of its own
    rows: list[tuple[int, bool]] = []  # images each forward pass ran, and whether timed
    hook = net.register_forward_hook(lambda m, args, out: rows.append((len(args[0]), timing())))
    try:
        X = images(10)
        first = features(net, digest, X[:6], 64)
        assert rows == [(6, False)]
        both = features(net, digest, X, 64)
        assert rows[1:] == [(4, False)]  # only the four new images ran
        np.testing.assert_allclose(both[:6], first, rtol=1e-5, atol=1e-6)
        again = features(net, digest, X[::-1], 64)
        assert len(rows) == 2  # nothing new: no forward pass
        np.testing.assert_array_equal(again, both[::-1])

        with timed_predictions():  # a timing must pay for the network, as for new images
            timed = features(net, digest, X, 64)
        assert rows[2:] == [(10, True)]
        np.testing.assert_allclose(timed, both, rtol=1e-5, atol=1e-6)

        features(net, digest, X, 96)  # another resolution: other features
        assert rows[3:] == [(10, False)]
    finally:
        hook.remove()


def test_grey_images_read_as_the_same_plane_on_each_channel(weights: Weights) -> None:
    grey = images(3, channels=1)
    digest = f"test-{uuid.uuid4()}"
    got = features(weights.net, digest, grey, 64)
    want = features(weights.net, digest, np.repeat(grey, 3, axis=1), 64)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# --- the learner in the registry ------------------------------------------------------------


def test_the_learner_needs_a_weights_file(weights: Weights) -> None:
    registered = get_learner("backbone")
    assert isinstance(registered, BackboneLearner)
    assert registered.images_only and registered.family == "pixels"
    assert "no backbone weights file is named" in (registered.available() or "")
    configured = get_learner("backbone", str(weights.safetensors))
    assert configured.available() is None
    assert registered.available() is not None  # the registry's learner is left as it was
    (config,) = configured.portfolio(TaskType.multiclass, 300)
    assert config["weights"] == str(weights.safetensors)
    assert all(configured.supports(task) for task in TaskType)


def test_the_backbone_comes_first_for_images_only_when_named(weights: Weights) -> None:
    assert "backbone" not in usable_learners(None, TaskType.multiclass, images=True)
    names = usable_learners(
        None, TaskType.multiclass, images=True, backbone=str(weights.safetensors)
    )
    assert names.index("backbone") < names.index("cnn")  # the cnn takes the time left
    assert "backbone" in usable_learners(
        None, TaskType.regression, images=True, backbone=str(weights.safetensors)
    )


def test_a_backbone_allows_slower_predictions_by_default() -> None:
    params = {"max_trials": None, "prediction_budget": "auto", "backbone": None}
    plain = prediction_budget(params, images=True)
    assert plain is not None
    assert prediction_budget({**params, "backbone": "w.safetensors"}, images=True) == 30.0
    assert plain < 30.0


# --- in AutoML ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image_frame() -> tuple[pd.DataFrame, np.ndarray]:
    """scikit-learn's digits as 8 x 8 uint8 arrays in an image column, shuffled."""
    digits = load_digits()
    pixels = (digits.images * 255 / 16).round().astype(np.uint8)
    order = np.random.default_rng(0).permutation(len(pixels))
    return pd.DataFrame({"image": list(pixels[order])}), digits.target[order]


@dataclass
class Searched:
    model: AutoML
    timed_rows: int  # images the backbone's network ran while predictions were timed


@pytest.fixture(scope="module")
def searched(weights: Weights, image_frame: tuple[pd.DataFrame, np.ndarray]) -> Searched:
    """A search of the backbone and the linear learner (one trial each)."""
    X, y = image_frame
    net, _, _ = network(weights.safetensors)  # the network the search will use
    rows: list[int] = []
    hook = net.register_forward_hook(
        lambda m, args, out: rows.append(len(args[0])) if timing() else None
    )
    try:
        model = AutoML(
            learners=["backbone", "linear"], max_trials=2, n_folds=3, seed=0, n_jobs=1,
            report=False, backbone=weights.safetensors,
        ).fit(X.head(N_FIT), y[:N_FIT])  # fmt: skip
    finally:
        hook.remove()
    return Searched(model, sum(rows))


def rows_of(model: AutoML, learner: str, baseline: bool = False) -> list[dict[str, Any]]:
    """The leaderboard rows of ``learner``'s searched trials (or its baseline)."""
    board = model.leaderboard_
    chosen = (board["learner"] == learner) & (board["baseline"] == baseline)
    return board[chosen].to_dict(orient="records")


def test_automl_searches_the_backbone(
    searched: Searched, weights: Weights, image_frame: tuple[pd.DataFrame, np.ndarray]
) -> None:
    model = searched.model
    (trial,) = rows_of(model, "backbone")
    assert trial["status"] == "ok", trial["error"]
    assert np.isfinite(trial["score"])
    (prior,) = rows_of(model, "prior", baseline=True)
    assert trial["score"] < prior["score"]  # log loss: its features carry the digit
    params = json.loads(trial["params"])
    assert params["weights"] == str(weights.safetensors)  # the trial says which file
    assert params["resolution"] in (64, 96, 128)
    assert any(t["learner"] == "backbone" for t in model.trials_)
    X, y = image_frame
    assert np.mean(model.predict(X.iloc[HELD_OUT]) == y[HELD_OUT]) > 0.8


def test_backbone_trials_are_timed_as_for_new_images(searched: Searched) -> None:
    model = searched.model
    (trial,) = rows_of(model, "backbone")
    linear = rows_of(model, "linear")
    assert linear and all(r["predict_seconds_per_1000"] is not None for r in linear)
    # Looked-up features would make a backbone look nearly as cheap as a linear model.
    assert trial["predict_seconds_per_1000"] > max(r["predict_seconds_per_1000"] for r in linear)
    assert searched.timed_rows > 0  # the timing ran the network


def test_a_saved_model_predicts_alike_without_the_weights_file(
    weights: Weights,
    image_frame: tuple[pd.DataFrame, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X, y = image_frame
    file = tmp_path / "model.safetensors"
    shutil.copy(weights.safetensors, file)
    model = AutoML(
        learners=["backbone"], max_trials=1, n_folds=2, seed=0, n_jobs=1, report=False,
        backbone=file,
    ).fit(X.head(N_FIT), y[:N_FIT])  # fmt: skip
    assert [m.learner for m in model.predictor_.members] == ["backbone"]
    held_out = X.iloc[HELD_OUT]
    said, proba = model.predict(held_out), model.predict_proba(held_out)
    assert np.mean(said == y[HELD_OUT]) > 0.6  # chance is 0.1
    model.save(tmp_path / "model.zip")

    file.rename(tmp_path / "moved.safetensors")
    # As in a fresh process: no network built from the file, no features cached.
    monkeypatch.setattr(backbone, "_networks", {})
    monkeypatch.setattr(backbone, "_features", {})
    loaded = AutoML.load(tmp_path / "model.zip", expected_hash=model.content_hash_)
    assert [m.learner for m in loaded.predictor_.members] == ["backbone"]
    assert np.array_equal(loaded.predict(held_out), said)
    np.testing.assert_allclose(loaded.predict_proba(held_out), proba, rtol=0, atol=1e-6)
    # It ran its own copy of the network (the file is gone), and kept no features: a
    # deployment is asked about new images, so a cache would only grow.
    assert not backbone._networks and not backbone._features


def test_a_backbone_regresses_with_a_ridge_head(
    weights: Weights, image_frame: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, y = image_frame
    target = y.astype(float)  # the digit as a number
    model = AutoML(
        task="regression", learners=["backbone"], max_trials=1, n_folds=2, seed=0, n_jobs=1,
        report=False, backbone=weights.safetensors,
    ).fit(X.head(N_FIT), target[:N_FIT])  # fmt: skip
    (trial,) = rows_of(model, "backbone")
    assert trial["status"] == "ok", trial["error"]
    assert np.isfinite(trial["score"])
    said = model.predict(X.iloc[HELD_OUT])
    assert said.shape == (len(target[HELD_OUT]),)
    assert said.dtype.kind == "f" and np.isfinite(said).all()
    assert len(np.unique(said)) > 10  # values, not classes


def test_automl_names_the_backbone_parameter_at_fault(
    weights: Weights, image_frame: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    X, y = image_frame
    images_30, y_30 = X.head(30), y[:30]
    table = pd.DataFrame({"a": np.arange(30.0), "b": np.arange(30.0) % 3})

    def error(frame: pd.DataFrame, **params: Any) -> InvalidInput:
        with pytest.raises(InvalidInput) as info:
            AutoML(max_trials=1, n_folds=3, report=False, **params).fit(frame, y_30)
        return info.value

    no_images = error(table, backbone=weights.safetensors)
    assert no_images.field == "backbone" and "image column" in str(no_images)
    missing = error(images_30, backbone=tmp_path / "gone.safetensors")
    assert missing.field == "backbone" and "gone.safetensors" in str(missing)
    unnamed = error(images_30, learners=["backbone"])
    assert unnamed.field == "learners"
    assert "no backbone weights file is named" in str(unnamed)
