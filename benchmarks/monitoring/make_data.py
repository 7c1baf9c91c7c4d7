"""Frames for the drift benchmark: a reference and a current window of N rows x 20
columns (15 numeric, 5 categorical) in which only the PLANTED columns drift.

Run: ``.venv/bin/python -m benchmarks.monitoring.make_data --rows 1000000 --out /tmp/drift``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq

NUMERIC = 15
CATEGORICAL = 5
# num_3: mean shifted by half a deviation; num_9: twice as spread; cat_2: shares moved.
PLANTED = ("num_3", "num_9", "cat_2")


def frame(rows: int, seed: int, drifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {}
    for i in range(NUMERIC):
        kind = i % 3
        if kind == 0:
            values = rng.normal(50 + i, 10, rows)
        elif kind == 1:
            values = rng.lognormal(3, 0.5, rows)
        else:
            values = rng.integers(0, 1000, rows).astype(float)
        if drifted and f"num_{i}" == "num_3":
            values = values + 5.0
        if drifted and f"num_{i}" == "num_9":
            values = 50 + i + (values - 50 - i) * 2.0
        values[rng.random(rows) < 0.02] = np.nan
        data[f"num_{i}"] = values
    for j in range(CATEGORICAL):
        levels = np.array([f"c{j}_{k}" for k in range(4 + 3 * j)])
        p = np.linspace(1.0, 2.0, levels.size)
        if drifted and f"cat_{j}" == "cat_2":
            p = p[::-1] ** 3
        data[f"cat_{j}"] = rng.choice(levels, rows, p=p / p.sum())
    return pd.DataFrame(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/drift"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, seed, drifted in (("reference", 1, False), ("current", 2, True)):
        table = pa.Table.from_pandas(frame(args.rows, seed, drifted), preserve_index=False)
        pv.write_csv(table, args.out / f"{name}.csv")
        pq.write_table(table, args.out / f"{name}.parquet")
    print(f"wrote {args.out}: {args.rows:,} rows; drifted: {', '.join(PLANTED)}")


if __name__ == "__main__":
    main()
