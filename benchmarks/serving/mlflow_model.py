"""Save the floor's scikit-learn LightGBM model as an MLflow model, for ``mlflow models
serve``. Run with a Python that has mlflow (its own venv: see run.sh).

    python benchmarks/serving/mlflow_model.py WORKDIR
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import mlflow.sklearn

work = Path(sys.argv[1])
classifier = pickle.loads((work / "floor.pkl").read_bytes())
mlflow.sklearn.save_model(classifier, str(work / "mlflow-model"))
