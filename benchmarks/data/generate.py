"""A synthetic CSV for the ingest benchmark: numbers, integers, categories, booleans,
dates, missing values and outliers, with a binary target."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` x 30 columns: 20 floats, 5 integers, 3 categories, a date and a target."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for i in range(20):
        x = rng.normal(i, 1 + i / 10, rows)
        x[rng.random(rows) < 0.02] = np.nan
        data[f"num_{i}"] = x.round(5)
    for i in range(5):
        data[f"int_{i}"] = rng.integers(0, 10 ** (i + 1), rows)
    data["city"] = rng.choice(["Oslo", "Lima", "Pune", "Kyiv", "Rome", "Doha"], rows)
    data["plan"] = rng.choice(["free", "pro", "team"], rows, p=[0.7, 0.2, 0.1])
    data["segment"] = np.char.add("s", rng.integers(0, 500, rows).astype(str))
    data["signup"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(
        rng.integers(0, 1500, rows), unit="D"
    )
    score = data["num_0"] + 0.5 * np.nan_to_num(data["num_3"]) + rng.normal(0, 1, rows)  # type: ignore[operator]
    data["churned"] = np.where(score > 1.5, "yes", "no")
    return pd.DataFrame(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    frame(args.rows).to_csv(args.path, index=False)
    print(f"wrote {args.path} ({args.path.stat().st_size / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()
