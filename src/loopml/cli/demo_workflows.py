"""The demo's workflow step: the seed's serialize -> classify -> confidence-filter workflow
over digit images, clean ones and blends of two digits that the model should doubt;
unsure images are queued for labelling, and the seed's own workflow fails loudly on one."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from loopml.cli.output import console
from loopml.core.schemas import WorkflowExecution
from loopml.sdk import Client
from loopml.workflow.seeds import NAMES, definition


def blend(first: Path, second: Path, out: Path) -> Path:
    """Half one digit, half another: an image no model should be sure of."""
    from PIL import Image

    pixels = (np.asarray(Image.open(first), float) + np.asarray(Image.open(second), float)) / 2
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, "PNG")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buffer.getvalue())
    return out


def workflow_step(client: Client, project: str, home: Path, step: int) -> None:
    folder = home / "demo-data" / "digits"
    clean = [sorted((folder / str(d)).glob("*.png"))[-2] for d in range(10)]
    blends = [
        blend(clean[d], clean[(d + 3) % 10], home / "demo-data" / "blends" / f"{d}.png")
        for d in range(10)
    ]
    bucket = home / "demo-data" / "unknown"
    for name in NAMES:
        client.workflows.save(project, name, definition(name))
    console.print(
        f"[green]{step}.[/] workflows: the seed's serialize -> classify -> confidence filter "
        f"(0.93), as Amazon States Language, over {len(clean)} digits and {len(blends)} "
        "blends of two digits; unsure images go to a bucket for labelling:"
    )
    started = [
        client.workflows.start(
            project, "classify-or-label", {"url": str(path), "unknown_bucket": str(bucket)}
        )
        for path in clean + blends
    ]
    ended = [client.workflows.wait(project, "classify-or-label", e.id) for e in started]
    outputs = [e.output for e in ended if e.status == "SUCCEEDED"]
    unknown = [o for o in outputs if o["routed"] == "unknown"]
    console.print(
        f"   {len(ended)} executions, {len(outputs)} succeeded: "
        f"{len(outputs) - len(unknown)} classified, {len(unknown)} queued in {bucket}"
    )
    unsure = min(outputs, key=lambda o: o["confidence"]) if outputs else None
    if unsure is not None:
        loud = client.workflows.start(project, "classify", {"url": unsure["url"]})
        loud = client.workflows.wait(project, "classify", loud.id)
        console.print(f"   the seed's own workflow on the least sure image: {_said(loud)}")
    console.print(
        f"   history of one: loopml workflow history {project}/classify-or-label {started[0].id}"
    )


def _said(execution: WorkflowExecution) -> str:
    if execution.status == "SUCCEEDED":
        return "SUCCEEDED"
    return f"{execution.status}, {execution.error}: {execution.cause}"
