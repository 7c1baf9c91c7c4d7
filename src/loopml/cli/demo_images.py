"""The demo's image step: scikit-learn's bundled digits (8 x 8) as PNG files in class
folders, uploaded, trained on (a CNN beside linear models on classic image features),
deployed, and asked about images sent as they are."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from loopml.cli.jobs import follow
from loopml.cli.output import console
from loopml.core.errors import StorageError
from loopml.sdk import Client

DIGITS_DATASET = "digits"
DIGITS_DEPLOYMENT = "digits"


def write_digits(folder: Path) -> int:
    """The 1,797 digits as ``<digit>/<n>.png``; returns how many (written once)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (pixels, digit) in enumerate(zip(digits.images, digits.target, strict=True)):
        path = folder / str(digit) / f"{i:04d}.png"
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        Image.fromarray((pixels * 255 / 16).astype(np.uint8)).save(buffer, "PNG")
        path.write_bytes(buffer.getvalue())
    return len(digits.images)


def images_step(client: Client, project: str, home: Path, budget: float, step: int) -> None:
    folder = home / "demo-data" / "digits"
    count = write_digits(folder)
    console.print(
        f"[green]{step}.[/] images: {count} handwritten digits (8 x 8 PNGs in class folders) "
        f"become dataset [bold]{DIGITS_DATASET}[/]; AutoML trains on the images for "
        f"{budget:g} s (a residual CNN, and linear models on classic image features):"
    )
    job = follow(client, client.datasets.upload(project, DIGITS_DATASET, [folder]))
    if job.state.value != "succeeded" or job.result is None:
        raise StorageError(f"ingest job {job.state.value}: {job.error}")
    training = client.trainings.start(
        project, DIGITS_DATASET, time_budget=budget, deploy=DIGITS_DEPLOYMENT
    )
    training = follow(client, training)
    if training.state.value != "succeeded" or training.result is None:
        raise StorageError(f"training job {training.state.value}: {training.error}")
    board = client.trainings.leaderboard(project, training.id)
    learners = sorted({row["learner"] for row in board if row["learner"] != "ensemble"})
    version = int(training.result["model_version"])
    client.deployments.deploy(project, DIGITS_DEPLOYMENT, version, reason="the image demo")
    right = total = 0
    for digit in range(10):
        path = sorted((folder / str(digit)).glob("*.png"))[-1]
        answer = client.deployments.predict_image(project, DIGITS_DEPLOYMENT, path.read_bytes())
        total += 1
        right += str(answer["predictions"][0]["label"]) == str(digit)
    accuracy = _accuracy(client.trainings.report(project, training.id))
    console.print(
        f"   leaderboard learners: {', '.join(learners)}; test accuracy on the frozen split "
        f"{accuracy}; the last image of each digit sent as a PNG body to "
        f"{project}/{DIGITS_DEPLOYMENT}: {right} of {total} right"
    )


def _accuracy(report: dict[str, Any]) -> str:
    found = ((report.get("test") or {}).get("metrics") or {}).get("accuracy") or {}
    value = found.get("value") if isinstance(found, dict) else None
    return f"{value:.3f}" if isinstance(value, float) else "n/a"
