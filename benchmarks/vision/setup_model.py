"""Train a digits image model (AutoML, default learners) and deploy it in a home, for the
single-image latency benchmark; writes one digit as ``digit.png``.

    .venv/bin/python -m benchmarks.vision.setup_model HOME OUTDIR [BUDGET]
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.serving.setup_model import register
from benchmarks.vision.run import digits_as_png
from loopml.automl import AutoML


def main() -> None:
    home, out = Path(sys.argv[1]), Path(sys.argv[2])
    budget = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
    X, y = digits_as_png()
    (out / "digit.png").write_bytes(X["image"].iloc[-1])
    model = AutoML(time_budget=budget, seed=0).fit(X.iloc[:-1], y[:-1])
    register(home, model, {"digits": 100.0})
    members = model.leaderboard_.head(3)["learner"].tolist()
    print("leaderboard top:", members)


if __name__ == "__main__":
    main()
