"""Train a digits image model (AutoML, default learners) and deploy it in a home, for the
single-image latency benchmark; writes one digit as ``digit.png``.

    .venv/bin/python -m benchmarks.vision.setup_model HOME OUTDIR [BUDGET]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from benchmarks.vision.run import digits_as_png
from loopml.automl import AutoML
from loopml.home import open_home
from loopml.settings import Settings
from loopml.store import deployments, projects, registry


def main() -> None:
    home, out = Path(sys.argv[1]), Path(sys.argv[2])
    budget = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
    X, y = digits_as_png()
    (out / "digit.png").write_bytes(X["image"].iloc[-1])
    model = AutoML(time_budget=budget, seed=0).fit(X.iloc[:-1], y[:-1])
    opened = open_home(Settings(home=home))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.zip"
        digest = model.save(path)
        stored = opened.blobs.put("models/bench/digits/model.zip", path.read_bytes())
    details = {
        "task": model.task_.value,
        "metric": model.metric_,
        "artifact": stored.key,
        "artifact_sha256": stored.sha256,
        "content_hash": digest,
        "size_bytes": stored.size,
        "classes": model.classes_.tolist(),
        "inputs": [{"name": "image", "kind": "image"}],
    }
    with opened.db.session() as s:
        projects.create(s, "bench")
        version, _ = registry.add_model(s, "bench", details, training=None, actor="benchmark")
        deployments.deploy(s, "bench", "digits", version.number, capture_percent=100)
    members = model.leaderboard_.head(3)["learner"].tolist()
    print("leaderboard top:", members)


if __name__ == "__main__":
    main()
