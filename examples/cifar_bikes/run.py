"""The seed, as it was written: CIFAR-100's bicycles and motorcycles, on one machine.

1. stage CIFAR-100 (``cifar:100`` downloads the published archive; ``--archive PATH``
   reads a local copy) and keep the classes ``bicycle`` and ``motorcycle``: 1,000 training
   and 200 test images of 32 x 32, the archive's own test part frozen as the test split;
2. train with AutoML (a residual CNN beside models on classic image features) and deploy
   as ``bikes`` with capture at 100 %;
3. run the seed's workflow over the test images, each read from the dataset by the
   server: serialize -> classify -> confidence filter at 0.93, unsure images going to
   the ``unknown`` bucket for labelling; and the seed's own ``classify`` on the least
   sure one, failing loudly;
4. plot the captured confidences over time with the threshold line.

``python examples/cifar_bikes/run.py --budget 300`` (a home in ``./.loopml``, or
``LOOPML_HOME``) prints a JSON summary at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

PROJECT = "bikes"
DATASET = "bikes"
DEPLOYMENT = "bikes"
CLASSES = ["bicycle", "motorcycle"]


def say(text: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {text}", file=sys.stderr, flush=True)


def stage_and_train(client: Any, archive: str, budget: float) -> tuple[str, dict[str, Any]]:
    from loopml.core.errors import AlreadyExists

    with contextlib.suppress(AlreadyExists):
        client.projects.create(PROJECT, description="bicycles vs motorcycles (CIFAR-100)")
    say(f"staging {archive} (classes {', '.join(CLASSES)})")
    job = client.jobs.wait(
        PROJECT, client.datasets.ingest(PROJECT, DATASET, archive, read={"classes": CLASSES}).id
    )
    if job.state.value != "succeeded":
        raise SystemExit(f"staging failed: {job.error}")
    version = client.datasets.version(PROJECT, DATASET)
    say(f"training on {version.ref} for {budget:g} s")
    training = client.trainings.start(PROJECT, version.ref, time_budget=budget)
    training = client.jobs.wait(PROJECT, training.id)
    if training.state.value != "succeeded":
        raise SystemExit(f"training failed: {training.error}")
    number = int(training.result["model_version"])
    client.deployments.deploy(PROJECT, DEPLOYMENT, number, capture_percent=100,
                              reason="the seed: bicycles vs motorcycles")  # fmt: skip
    report = client.trainings.report(PROJECT, training.id)
    accuracy = ((report.get("test") or {}).get("metrics") or {}).get("accuracy") or {}
    return version.ref, {
        "model_version": number,
        "test_accuracy": accuracy.get("value"),
        "learners": sorted(
            {r["learner"] for r in client.trainings.leaderboard(PROJECT, training.id)}
        ),
    }


def test_images(client: Any, ref: str, count: int) -> list[dict[str, Any]]:
    """The frozen test split's images, as the workflow's serialize step reads them."""
    name, _, number = ref.partition("@")
    rows = json.loads(client.datasets.rows(PROJECT, name, number, part="test", format="json"))
    return [{"dataset": ref, "image": row["image"]} for row in rows[:count]]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--archive",
        default="cifar:100",
        help="cifar:100 (downloads it) or a local cifar-100-python.tar.gz",
    )
    parser.add_argument("--budget", type=float, default=300, help="AutoML seconds.")
    parser.add_argument("--images", type=int, default=200, help="Test images to classify.")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("cifar-bikes"),
        help="Where the unknown bucket and the plot go.",
    )
    args = parser.parse_args(argv)

    from loopml.cli.local import connect_local
    from loopml.cli.seed_workflow import classify_images, plot_confidences

    args.out.mkdir(parents=True, exist_ok=True)
    archive = args.archive if args.archive.startswith("cifar:") else str(Path(args.archive))
    client = connect_local(worker=True)
    try:
        ref, trained = stage_and_train(client, archive, args.budget)
        images = test_images(client, ref, args.images)
        say(f"running classify-or-label on {len(images)} test images")
        summary = classify_images(client, PROJECT, DEPLOYMENT, images, str(args.out / "unknown"))
        summary.update(trained, dataset=ref)
        plot = args.out / "confidences.png"
        summary["plot"] = str(plot)
        summary["captured"] = plot_confidences(
            client, PROJECT, DEPLOYMENT, plot, expected=summary["executions"] + 1
        )
    finally:
        client.close()
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
