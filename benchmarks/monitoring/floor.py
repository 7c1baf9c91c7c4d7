"""The vectorised floor: the same per-column drift measures loopml and Evidently use on
large samples (Wasserstein distance normed by the reference's deviation for numbers,
Jensen-Shannon distance for categories), with scipy on the raw columns and nothing else.

Run: ``.venv/bin/python -m benchmarks.monitoring.floor REFERENCE CURRENT``
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance


def read(path: str) -> pd.DataFrame:
    if path.endswith(".parquet"):
        return pd.read_parquet(path)
    return pd.read_csv(path, engine="pyarrow")


def main(reference_path: str, current_path: str) -> None:
    reference, current = read(reference_path), read(current_path)
    drifted = []
    for name in reference.columns:
        ref, cur = reference[name].dropna(), current[name].dropna()
        if pd.api.types.is_numeric_dtype(ref):
            value = wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001)
        else:
            shares = pd.concat(
                [ref.value_counts(normalize=True), cur.value_counts(normalize=True)], axis=1
            )
            shares = shares.fillna(0.0).to_numpy()
            value = float(jensenshannon(shares[:, 0], shares[:, 1]))
        if value > 0.1:
            drifted.append(name)
    print("drifted:", ", ".join(drifted))


if __name__ == "__main__":
    main(*sys.argv[1:3])
