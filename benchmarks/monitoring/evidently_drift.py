"""Evidently's DataDriftPreset on the same files, as its users run it (pandas in, report
out). Needs a Python with evidently installed (it does not import under pandas 3): see
benchmarks/monitoring/README.md.

Run: ``$EVIDENTLY_PYTHON benchmarks/monitoring/evidently_drift.py REFERENCE CURRENT``
"""

from __future__ import annotations

import sys

import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset


def read(path: str) -> pd.DataFrame:
    if path.endswith(".parquet"):
        return pd.read_parquet(path)
    return pd.read_csv(path, engine="pyarrow")


def main(reference_path: str, current_path: str) -> None:
    reference, current = read(reference_path), read(current_path)
    result = Report([DataDriftPreset()]).run(current, reference).dict()
    drifted = []
    for metric in result["metrics"]:
        config = metric.get("config", {})
        name = config.get("column")
        value = metric.get("value")
        threshold = config.get("threshold")
        if name is None or not isinstance(value, float) or threshold is None:
            continue
        # p-value tests drift below their threshold, distances above it
        if (value < threshold) if "p_value" in config.get("method", "") else (value > threshold):
            drifted.append(name)
    print("drifted:", ", ".join(drifted))


if __name__ == "__main__":
    main(*sys.argv[1:3])
