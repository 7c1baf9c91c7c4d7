"""Save the floor's scikit-learn LightGBM model as an MLflow model (LightGBM flavour), for
``mlflow models serve``. Run with a Python that has mlflow (its own venv: see run.sh).

    python benchmarks/serving/mlflow_model.py WORKDIR
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import mlflow.lightgbm

work = Path(sys.argv[1])
classifier = pickle.loads((work / "floor.pkl").read_bytes())
# Named requirements: inferring them runs a subprocess that may wait on the network.
mlflow.lightgbm.save_model(
    classifier, str(work / "mlflow-model"), pip_requirements=["lightgbm", "scikit-learn"]
)
