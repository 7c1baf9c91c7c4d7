"""The demo's workflow step: the seed's serialize -> classify -> confidence-filter workflow
over digit images, clean ones and blends of two digits that the model should doubt;
unsure images are queued for labelling, and the seed's own workflow fails loudly on one."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from loopml.cli.demo_images import DIGITS_DEPLOYMENT
from loopml.cli.output import console
from loopml.cli.seed_workflow import classify_images
from loopml.sdk import Client


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
    console.print(
        f"[green]{step}.[/] workflows: the seed's serialize -> classify -> confidence filter "
        f"(0.93), as Amazon States Language, over {len(clean)} digits and {len(blends)} "
        "blends of two digits; unsure images go to a bucket for labelling:"
    )
    images = [{"url": str(path)} for path in clean + blends]
    summary = classify_images(client, project, DIGITS_DEPLOYMENT, images, str(bucket))
    console.print(
        f"   {summary['executions']} executions, {summary['succeeded']} succeeded: "
        f"{summary['classified']} classified, {summary['unknown']} queued in {bucket}"
    )
    least = summary.get("least_confident")
    if least is not None:
        said = least["classify_status"]
        if said != "SUCCEEDED":
            said += f", {least['classify_error']}: {least['classify_cause']}"
        console.print(f"   the seed's own workflow on the least sure image: {said}")
    console.print(
        f"   history of one: loopml workflow history {project}/classify-or-label "
        f"{summary['first_execution']}"
    )
