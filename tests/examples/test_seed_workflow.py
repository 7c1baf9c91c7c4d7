"""examples/seed_workflow/run.py, as a user runs it: a fresh home, a real deployment, the
seed's workflows executed and recorded by the in-process server, and the plot."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

SCRIPT = Path(__file__).parents[2] / "examples" / "seed_workflow" / "run.py"


def test_the_seed_workflow_runs_end_to_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_HOME"] = str(tmp_path / "home")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--images", "8", "--budget", "3"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)

    assert summary["executions"] == 8
    assert summary["classified"] + summary["unknown"] == 8
    # Each unsure image waits in the bucket under its own content hash, a real PNG.
    queued = [Path(url) for url in summary["queued"]]
    assert len(queued) == summary["unknown"]
    for path in queued:
        assert path.parent == out / "unknown"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.stem
        assert path.read_bytes().startswith(b"\x89PNG")
    least = summary["least_confident"]
    if least["confidence"] < 0.93:
        # The seed's own workflow fails loudly below the threshold, with the numbers.
        assert least["classify_status"] == "FAILED"
        assert least["classify_error"] == "ConfidenceThresholdNotMet"
        assert f"{least['confidence']:.4f}" in least["classify_cause"]
    else:
        assert least["classify_status"] == "SUCCEEDED"
    # Every prediction was captured (8 images and the loud run), and plotted.
    assert summary["captured"] == 9
    with Image.open(summary["plot"]) as plot:
        assert plot.size[0] > 600 and plot.size[1] > 300
