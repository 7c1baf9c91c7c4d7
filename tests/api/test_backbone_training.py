"""A server whose ``vision_backbone`` names a local weights file: trainings of image
datasets search the pretrained backbone, the deployed model answers PNG bodies without
the file (its weights travel in the model), and tabular trainings are untouched."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from loopml.sdk import Client
from tests.api.support import client, serve
from tests.conftest import LiveServer

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

from loopml.vision.resnet import Layout, ResNetFeatures  # noqa: E402

PER_DIGIT = 12
DIGITS = "/projects/pics/deployments/digits"


def png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small ResNet's weights as timm names them, with the classifier timm's files
    carry, in safetensors: the format of a hub ``model.safetensors``."""
    torch.manual_seed(0)
    state = dict(ResNetFeatures(Layout((1, 1, 1, 1), False)).state_dict())
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    path = tmp_path_factory.mktemp("weights") / "model.safetensors"
    safetensors_torch.save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, weights: Path) -> Iterator[LiveServer]:
    with serve(tmp_path_factory, vision_backbone=weights) as live:
        yield live


@pytest.fixture(scope="module")
def sdk(server: LiveServer) -> Iterator[Client]:
    with Client(server.url, server.admin_key) as c:
        yield c


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = load_digits()
    pixels = (data.images * 255 / 16).round().astype(np.uint8)
    folder = tmp_path_factory.mktemp("digits") / "digits"
    used = []
    for digit in range(10):
        for i in np.flatnonzero(data.target == digit)[:PER_DIGIT]:
            path = folder / str(digit) / f"{i:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png(pixels[i]))
            used.append(int(i))
    unseen = np.setdiff1d(np.arange(len(data.target)), used)[:40]
    return {"folder": folder, "pixels": pixels[unseen], "labels": data.target[unseen]}


@pytest.fixture(scope="module")
def trained(sdk: Client, digits: dict[str, Any], weights: Path) -> dict[str, Any]:
    sdk.projects.create("pics")
    job = sdk.datasets.ingest("pics", "digits", str(digits["folder"]))
    assert sdk.jobs.wait("pics", job.id, timeout=120).state.value == "succeeded"
    started = sdk.trainings.start("pics", "digits", time_budget=12, seed=0, deploy="digits")
    training = sdk.trainings.wait("pics", started.id, timeout=180)
    assert training.state.value == "succeeded", training.error
    return {"id": training.id, **(training.result or {})}


def test_an_image_training_searches_the_servers_backbone(
    sdk: Client, trained: dict[str, Any], weights: Path
) -> None:
    board = sdk.trainings.leaderboard("pics", trained["id"])
    ours = [r for r in board if r["learner"] == "backbone" and r["status"] == "ok"]
    assert ours, board  # a later configuration may be pruned; the first always runs
    assert all(r["predict_seconds_per_1000"] > 0 for r in ours)
    trials = [t for t in sdk.trainings.trials("pics", trained["id"]) if t["learner"] == "backbone"]
    assert trials and all(t["params"]["weights"] == str(weights) for t in trials)


def test_the_deployed_model_answers_without_the_weights_file(
    server: LiveServer, trained: dict[str, Any], digits: dict[str, Any], weights: Path
) -> None:
    moved = weights.with_suffix(".moved")
    weights.rename(moved)  # the deployment must not need the server's file any more
    try:
        with client(server, server.admin_key) as http:
            said = []
            for pixels in digits["pixels"][:20]:
                r = http.post(
                    f"{DIGITS}/predict", content=png(pixels), headers={"Content-Type": "image/png"}
                )
                assert r.status_code == 200, r.text
                said.append(r.json()["predictions"][0]["label"])
    finally:
        moved.rename(weights)
    right = np.mean([s == str(t) for s, t in zip(said, digits["labels"][:20], strict=True)])
    assert right > 0.5  # ten classes: chance is 0.1


def test_tabular_trainings_do_not_search_the_backbone(sdk: Client, trained: dict[str, Any]) -> None:
    job = sdk.trainings.start("pics", "builtin:iris", time_budget=3, max_trials=2, seed=0)
    done = sdk.trainings.wait("pics", job.id, timeout=120)
    assert done.state.value == "succeeded", done.error
    learners = {r["learner"] for r in sdk.trainings.leaderboard("pics", job.id)}
    assert "backbone" not in learners and "linear" in learners


def test_a_missing_weights_file_fails_the_training_naming_it(
    sdk: Client, trained: dict[str, Any], weights: Path
) -> None:
    moved = weights.with_suffix(".gone")
    weights.rename(moved)
    try:
        job = sdk.trainings.start("pics", "digits", time_budget=3, seed=0)
        done = sdk.trainings.wait("pics", job.id, timeout=120)
    finally:
        moved.rename(weights)
    assert done.state.value == "failed"
    assert "backbone weights file not found" in (done.error or "")
    assert str(weights) in (done.error or "")
