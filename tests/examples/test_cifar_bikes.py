"""examples/cifar_bikes/run.py on a small archive in CIFAR-100's exact format: staged
with the class filter, trained, deployed with capture, the seed's workflow run over the
frozen test images read from the dataset by the server, and the plot drawn."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.data.support import BICYCLE, MOTORCYCLE, cifar100_archive

SCRIPT = Path(__file__).parents[2] / "examples" / "cifar_bikes" / "run.py"


def test_the_cifar_bikes_example_runs_on_a_cifar_format_archive(tmp_path: Path) -> None:
    train = [BICYCLE] * 40 + [MOTORCYCLE] * 40 + [0, 1, 2, 3]
    test = [BICYCLE] * 5 + [MOTORCYCLE] * 5 + [4, 5]
    archive = cifar100_archive(tmp_path / "cifar-100-python.tar.gz", train, test)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_HOME"] = str(tmp_path / "home")
    out = tmp_path / "out"
    command = [sys.executable, str(SCRIPT), "--archive", str(archive), "--budget", "3",
               "--images", "8", "--out", str(out)]  # fmt: skip
    result = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)

    # Only bicycles and motorcycles were kept; the archive's test part is the test split.
    assert summary["dataset"] == "bikes@1"
    assert isinstance(summary["test_accuracy"], float)
    assert summary["executions"] == summary["succeeded"] == 8, summary["failures"]
    assert summary["classified"] + summary["unknown"] == 8
    assert len(summary["queued"]) == summary["unknown"]
    assert all((out / "unknown" / Path(url).name).is_file() for url in summary["queued"])
    least = summary["least_confident"]
    assert least["image"]["dataset"] == "bikes@1" and len(least["image"]["image"]) == 64
    if least["confidence"] < 0.93:
        assert (least["classify_status"], least["classify_error"]) == (
            "FAILED",
            "ConfidenceThresholdNotMet",
        )
    # Every prediction of the workflows was captured (8 images and the loud run).
    assert summary["captured"] == 9
    with Image.open(summary["plot"]) as plot:
        assert plot.size[0] > 600
