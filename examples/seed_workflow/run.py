"""The seed workflow, end to end, on this machine.

Handwritten digits (scikit-learn's bundled 8 x 8 images, as PNG files) stand in for the
seed's CIFAR-100 bicycles and motorcycles, so that it runs offline in a minute:

1. write the digits as PNGs; hold the last ``--images`` of them back as "new" images;
2. upload the rest as a dataset, train with AutoML, deploy as ``digits`` with capture
   at 100 %;
3. save the seed's two workflows (``src/loopml/workflow/seeds/``) and run
   ``classify-or-label`` once per held-back
   image (serialize -> classify -> confidence filter at 0.93; an image below it goes to
   the ``unknown`` bucket for labelling), and ``classify`` once on an image the model is
   unsure of, to show it failing loudly;
4. plot the captured confidences over time, with the threshold line.

Run it with ``python examples/seed_workflow/run.py`` (a home directory in ``./.loopml``,
or ``LOOPML_HOME``); it prints a JSON summary at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

PROJECT = "seed"
DEPLOYMENT = "digits"


def write_digits(folder: Path, held_back: int) -> list[Path]:
    """Training PNGs in class folders under ``folder/train``; returns the held-back ones."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    new: list[Path] = []
    count = len(digits.images)
    for i, (pixels, digit) in enumerate(zip(digits.images, digits.target, strict=True)):
        if i >= count - held_back:
            path = folder / "new" / f"{i:04d}.png"
            new.append(path)
        else:
            path = folder / "train" / str(digit) / f"{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        Image.fromarray((pixels * 255 / 16).astype(np.uint8)).save(buffer, "PNG")
        path.write_bytes(buffer.getvalue())
    return new


def train_and_deploy(client: Any, folder: Path, budget: float) -> int:
    from loopml.core.errors import AlreadyExists

    with contextlib.suppress(AlreadyExists):
        client.projects.create(PROJECT, description="the seed workflow")
    say("uploading the training images")
    job = client.datasets.upload(PROJECT, DEPLOYMENT, [folder / "train"])
    job = client.jobs.wait(PROJECT, job.id)
    if job.state.value != "succeeded":
        raise SystemExit(f"ingest failed: {job.error}")
    say(f"training for {budget:g} s")
    training = client.trainings.start(PROJECT, DEPLOYMENT, time_budget=budget)
    training = client.jobs.wait(PROJECT, training.id)
    if training.state.value != "succeeded":
        raise SystemExit(f"training failed: {training.error}")
    version = int(training.result["model_version"])
    client.deployments.deploy(
        PROJECT, DEPLOYMENT, version, capture_percent=100, reason="the seed workflow"
    )
    return version


def say(text: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("seed-workflow"),
        help="Where images, the unknown bucket and the plot go.",
    )
    parser.add_argument("--images", type=int, default=30, help="Held-back images to classify.")
    parser.add_argument("--budget", type=float, default=20, help="AutoML seconds.")
    args = parser.parse_args(argv)

    from loopml.cli.local import connect_local
    from loopml.cli.seed_workflow import classify_images, plot_confidences

    args.out.mkdir(parents=True, exist_ok=True)
    new = write_digits(args.out / "digits", args.images)
    client = connect_local(worker=True)
    try:
        version = train_and_deploy(client, args.out / "digits", args.budget)
        say(f"running classify-or-label on {len(new)} images")
        images = [{"url": str(path)} for path in new]
        summary = classify_images(client, PROJECT, DEPLOYMENT, images, str(args.out / "unknown"))
        summary["model_version"] = version
        summary["plot"] = str(args.out / "confidences.png")
        plot = args.out / "confidences.png"
        summary["captured"] = plot_confidences(
            client, PROJECT, DEPLOYMENT, plot, expected=summary["executions"] + 1
        )
    finally:
        client.close()
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
