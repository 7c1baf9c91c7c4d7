"""One pass over each column: the statistics that schema inference, the quality report and
the stored profile all read, computed once.

Numbers are sorted once (a sort is cheaper than a hash table for a million doubles) and
everything else is read off the sorted values; other columns are counted with Arrow.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
FENCE = 3.0  # IQR multiples: Tukey's "far out" values
ROBUST_Z = 5.0
_TOP = 10
_BINS = 20


def is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def summarise(column: pa.ChunkedArray) -> dict[str, Any]:
    """Rows, missing, distinct values and the most common ones; for numbers also range,
    moments, quantiles, a histogram and far values (outside the IQR fences)."""
    if is_number(column.type):
        return _numbers(column)
    return _counted(column)


def _counted(column: pa.ChunkedArray) -> dict[str, Any]:
    counts = pc.value_counts(column.drop_null())
    sizes = np.asarray(counts.field("counts"), dtype=np.int64)
    order = np.argsort(-sizes, kind="stable")[:_TOP]
    values = counts.field("values").take(pa.array(order)).to_pylist()
    return {
        "rows": len(column),
        "missing": column.null_count,
        "unique": len(sizes),
        "top": [
            {"value": _plain(v), "count": int(sizes[i])} for v, i in zip(values, order, strict=True)
        ],
    }


def _numbers(column: pa.ChunkedArray) -> dict[str, Any]:
    x = column.to_numpy().astype(float, copy=False)
    finite = np.sort(x[np.isfinite(x)])
    n = len(finite)
    out: dict[str, Any] = {"rows": len(column), "missing": len(column) - n, "unique": 0, "top": []}
    if n == 0:
        return out
    starts = np.flatnonzero(np.r_[True, finite[1:] != finite[:-1]])
    runs = np.diff(np.r_[starts, n])
    best = _largest(runs, _TOP)
    quantiles = sorted_quantiles(finite, QUANTILES)
    edges = np.linspace(finite[0], finite[-1], _BINS + 1)
    # Counts per bin straight from the sorted values; the last bin includes its right edge.
    cuts = np.searchsorted(finite, edges[1:-1], side="left")
    counts = np.diff(np.r_[0, cuts, n])
    out.update(
        unique=len(starts),
        top=[{"value": _plain(finite[starts[i]]), "count": int(runs[i])} for i in best],
        min=float(finite[0]),
        max=float(finite[-1]),
        mean=float(finite.mean()),
        std=float(finite.std()),
        quantiles={str(q): float(v) for q, v in zip(QUANTILES, quantiles, strict=True)},
        histogram={"counts": counts.tolist(), "edges": edges.tolist()},
        far=_far(finite, starts, runs, quantiles),
    )
    return out


def sorted_quantiles(values: np.ndarray, qs: tuple[float, ...]) -> np.ndarray:
    """Quantiles (linear interpolation) of values already sorted, without another sort."""
    position = np.asarray(qs) * (len(values) - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def _largest(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values, largest first (ties by position)."""
    if len(values) > k:
        candidates = np.argpartition(-values, k - 1)[:k]
        candidates.sort()
    else:
        candidates = np.arange(len(values))
    return candidates[np.argsort(-values[candidates], kind="stable")]


def _far(
    finite: np.ndarray, starts: np.ndarray, runs: np.ndarray, quantiles: np.ndarray
) -> dict[str, Any]:
    """Values beyond Q1 - 3 IQR or Q3 + 3 IQR that are also 5 robust z-scores out."""
    q1, median, q3 = (quantiles[QUANTILES.index(q)] for q in (0.25, 0.5, 0.75))
    iqr = q3 - q1
    # The MAD from an evenly spaced tenth of a large column: as good, ten times cheaper.
    thinned = finite[:: max(1, len(finite) // 100_000)]
    mad = 1.4826 * float(np.median(np.abs(thinned - median)))
    if iqr <= 0 or mad <= 0 or len(starts) <= 10:
        return {"count": 0}
    # Far by both rules: beyond the IQR fences and more than 5 robust z-scores out.
    low = min(q1 - FENCE * iqr, median - ROBUST_Z * mad)
    high = max(q3 + FENCE * iqr, median + ROBUST_Z * mad)
    below = int(np.searchsorted(finite, low, side="left"))
    above = len(finite) - int(np.searchsorted(finite, high, side="right"))
    count = below + above
    if count == 0:
        return {"count": 0, "lower": float(low), "upper": float(high)}
    values = finite[starts]
    outside = (values < low) | (values > high)
    repeated = int(np.argmax(np.where(outside, runs, 0)))
    return {
        "count": count,
        "lower": float(low),
        "upper": float(high),
        "most_common": float(values[repeated]),
        "most_common_count": int(runs[repeated]),
    }


def _plain(value: Any) -> Any:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        number = float(value)
        return int(number) if abs(number) < 2**53 else number
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
