"""Driving the seed's workflows through a client: what ``make demo`` and the examples in
``examples/`` share. Each image runs through ``classify-or-label`` (unsure ones go to a
bucket for labelling), the seed's own ``classify`` shows its loud failure on the least
sure one, and the captured confidences can be plotted against the threshold."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from loopml.sdk import Client
from loopml.workflow.seeds import NAMES, definition

THRESHOLD = 0.93  # the seed's; the definitions say it too


def save_seed_workflows(client: Client, project: str) -> None:
    for name in NAMES:
        client.workflows.save(project, name, definition(name))


def classify_images(
    client: Client, project: str, deployment: str, images: list[dict[str, Any]], bucket: str
) -> dict[str, Any]:
    """Run ``classify-or-label`` once per image (``{"url": ...}`` or ``{"dataset",
    "image"}``), all started before any is waited for; returns a summary."""
    save_seed_workflows(client, project)
    inputs = [{"image": image, "deployment": deployment, "unknown_bucket": bucket}
              for image in images]  # fmt: skip
    started = [client.workflows.start(project, "classify-or-label", i) for i in inputs]
    ended = [client.workflows.wait(project, "classify-or-label", e.id) for e in started]
    outputs = [e.output for e in ended if e.status == "SUCCEEDED"]
    failed = [e for e in ended if e.status != "SUCCEEDED"]
    summary: dict[str, Any] = {
        "executions": len(ended),
        "succeeded": len(outputs),
        "classified": sum(o["routed"] == "classified" for o in outputs),
        "unknown": sum(o["routed"] == "unknown" for o in outputs),
        "queued": sorted(o["queued"] for o in outputs if o["routed"] == "unknown"),
        "first_execution": started[0].id if started else None,
        "failures": [f"{e.error}: {e.cause}" for e in failed],
    }
    if outputs:
        unsure = min(outputs, key=lambda o: o["confidence"])
        loud = client.workflows.start(
            project, "classify", {"image": unsure["image"], "deployment": deployment}
        )
        loud = client.workflows.wait(project, "classify", loud.id)
        summary["least_confident"] = {
            "image": unsure["image"], "confidence": unsure["confidence"],
            "classify_status": loud.status, "classify_error": loud.error,
            "classify_cause": loud.cause,
        }  # fmt: skip
    return summary


def plot_confidences(
    client: Client, project: str, deployment: str, out: Path, expected: int = 0
) -> int:
    """The confidence of each captured prediction over time, with the threshold line, as a
    PNG; returns how many predictions it shows. With ``expected``, it first waits (up to
    ten seconds) for that many captures: the server writes them about once a second."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    end = time.monotonic() + 10
    captures = client.deployments.captures(project, deployment, limit=100_000)
    while len(captures) < expected and time.monotonic() < end:
        time.sleep(0.25)
        captures = client.deployments.captures(project, deployment, limit=100_000)
    points = []
    for capture in captures:
        answer = json.loads(capture["captureData"]["endpointOutput"]["data"])
        at = datetime.fromisoformat(capture["eventMetadata"]["inferenceTime"])
        points.append((at, answer["confidence"]))
    figure, axes = plt.subplots(figsize=(8, 3.5))
    times: Any = [p[0] for p in points]  # matplotlib takes datetimes; its stubs do not say so
    axes.plot(times, [p[1] for p in points], "o", markersize=4, label="captured predictions")
    axes.axhline(THRESHOLD, color="red", linestyle="--", label=f"threshold {THRESHOLD}")
    axes.set_ylabel("confidence")
    axes.set_ylim(0, 1.02)
    axes.set_title(f"{project}/{deployment}: confidence of each captured prediction")
    axes.legend(loc="lower left")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return len(points)
