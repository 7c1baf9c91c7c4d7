"""One pass over each column: the statistics that schema inference, the quality report and
the stored profile all read, computed once.

Numbers are read off a table of distinct values and their counts when one is cheap to
make: every column of up to ``EXACT_ROWS`` values (one sort), integers in a compact range
(one ``bincount``) and columns of few distinct values (one hash count). A large column of
many distinct values is never sorted: its quantiles are still exact (a fine histogram
finds the few bins that hold them, and only those are sorted), its most common values are
counted exactly from candidates a sample names, and its number of distinct values is an
estimate (linear counting over a hashed bitmap, typically within 0.2%), marked
``unique_estimated``. Other columns are counted with Arrow.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
FENCE = 3.0  # IQR multiples: Tukey's "far out" values
ROBUST_Z = 5.0
EXACT_ROWS = 200_000
_TOP = 10
_BINS = 20
_FINE = 205 * _BINS  # fine bins per histogram bin: where exact quantiles are looked for
_SAMPLE = 20_000
_FEW = 0.2  # a sample with at most this share of distinct values: count them all


def is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


class Scratch:
    """Work arrays handed from column to column: a fresh array of a million values costs
    its page faults each time, a reused one does not. One per thread."""

    def __init__(self) -> None:
        self._floats = np.empty(0, dtype=np.float64)
        self._ints = np.empty(0, dtype=np.intp)
        self._values = np.empty(0, dtype=np.float64)

    def floats(self, n: int) -> np.ndarray:
        if len(self._floats) < n:
            self._floats = np.empty(n, dtype=np.float64)
        return self._floats[:n]

    def ints(self, n: int) -> np.ndarray:
        if len(self._ints) < n:
            self._ints = np.empty(n, dtype=np.intp)
        return self._ints[:n]

    def values(self, n: int) -> np.ndarray:
        """Where a column's numbers are gathered (apart from ``floats``, which works on
        them)."""
        if len(self._values) < n:
            self._values = np.empty(n, dtype=np.float64)
        return self._values[:n]


def summarise(column: pa.ChunkedArray, scratch: Scratch | None = None) -> dict[str, Any]:
    """Rows, missing, distinct values and the most common ones; for numbers also range,
    moments, quantiles, a histogram and far values (outside the IQR fences).

    ``scratch`` lends work arrays when many columns are summarised one after another.
    """
    if is_number(column.type):
        with np.errstate(over="ignore", invalid="ignore"):  # ranges near the float limit
            return _numbers(column, scratch or Scratch())
    return _counted(column)


def _counted(column: pa.ChunkedArray) -> dict[str, Any]:
    counts = pc.value_counts(column)  # counting the missing beats copying the rest
    if column.null_count:
        counts = counts.filter(counts.field("values").is_valid())
    sizes = np.asarray(counts.field("counts"), dtype=np.int64)
    order = _largest(sizes, _TOP)
    values = counts.field("values").take(pa.array(order)).to_pylist()
    return {
        "rows": len(column),
        "missing": column.null_count,
        "unique": len(sizes),
        "top": [
            {"value": _plain(v), "count": int(sizes[i])} for v, i in zip(values, order, strict=True)
        ],
    }


def _numbers(column: pa.ChunkedArray, work: Scratch) -> dict[str, Any]:
    x = _finite(column, work)
    n = len(x)
    out: dict[str, Any] = {"rows": len(column), "missing": len(column) - n, "unique": 0, "top": []}
    if n == 0:
        return out
    low, high = x.min(), x.max()
    mean = float(x.mean())
    # One scratch array serves the deviations here and the bins and hashes later: a
    # large column costs one allocation, not one per step.
    scratch = np.subtract(x, mean, out=work.floats(n), dtype=np.float64)
    np.multiply(scratch, scratch, out=scratch)  # not np.dot: BLAS threads would spin
    std = math.sqrt(float(scratch.sum()) / n)
    out.update(min=float(low), max=float(high), mean=mean, std=std)
    # A range wider than the largest float (about 1.8e308) cannot be binned: sort.
    table = _value_table(x, low, high) if np.isfinite(float(high) - float(low)) else _sorted(x)
    if table is not None:
        out.update(_from_table(*table))
    else:
        out.update(_from_fine_bins(x, float(low), float(high), scratch, work.ints(n)))
    return out


def _finite(column: pa.ChunkedArray, work: Scratch) -> np.ndarray:
    """The column's values that are numbers (not missing, not infinite), in row order;
    integers stay integers so that large ones keep every digit."""
    if pa.types.is_floating(column.type) and column.num_chunks > 1:
        x = _gathered(column, work.values(len(column) - column.null_count))
    else:
        # One array first: Arrow's kernels cost about 0.2 ms a chunk; a reader makes dozens.
        values = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        if values.null_count:
            values = pc.drop_null(values)
        if pa.types.is_integer(values.type):
            ints = values.to_numpy()
            if ints.dtype == np.uint64 and len(ints) and ints.max() >= 2**63:
                return ints.astype(np.float64)  # beyond int64: as floats, as before
            return np.asarray(ints, dtype=np.int64)
        x = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
    return x if len(x) == 0 or np.isfinite(x.max() - x.min()) else x[np.isfinite(x)]


def _gathered(column: pa.ChunkedArray, out: np.ndarray) -> np.ndarray:
    """A float column's present values copied chunk by chunk into ``out``: one copy into
    memory already touched, where joining the chunks and dropping the missing made two
    fresh ones (the benchmark's ingest peaked 30 MB higher)."""
    at = 0
    for chunk in column.chunks:
        if chunk.null_count:
            chunk = pc.drop_null(chunk)
        part = chunk.to_numpy(zero_copy_only=False)
        out[at : at + len(part)] = part
        at += len(part)
    return out


def _value_table(x: np.ndarray, low: Any, high: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Distinct values (ascending) and their counts, or None when that would cost a sort
    of a large column of mostly distinct values."""
    n = len(x)
    if x.dtype.kind == "i" and int(high) - int(low) <= max(4 * n, 1 << 16):
        counts = np.bincount(x - low)
        seen = np.flatnonzero(counts)
        return seen + low, counts[seen]
    if n > EXACT_ROWS:
        sample = x[:: n // _SAMPLE]
        if len(np.unique(sample)) > _FEW * len(sample):
            if x.dtype.kind != "i":
                return None
            # Integers are counted exactly even so: identifiers are told by "all distinct".
        else:
            counts = pc.value_counts(pa.array(x + 0 if x.dtype.kind == "f" else x))  # -0.0 is 0.0
            values = np.asarray(counts.field("values"))
            order = np.argsort(values)
            return values[order], np.asarray(counts.field("counts"), dtype=np.int64)[order]
    return _sorted(x)


def _sorted(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values, sizes = np.unique(x + 0 if x.dtype.kind == "f" else x, return_counts=True)
    return values, sizes


def _from_table(values: np.ndarray, counts: np.ndarray) -> dict[str, Any]:
    n = int(counts.sum())
    ends = np.cumsum(counts)  # rank of each value's last copy, plus one

    def ranked(ranks: np.ndarray) -> np.ndarray:
        return values[np.searchsorted(ends, ranks, side="right")].astype(float)

    quantiles = _interpolate(ranked, n)
    edges = np.linspace(float(values[0]), float(values[-1]), _BINS + 1)
    # Values per bin: a value on an inner edge opens the bin to its right; the last bin
    # includes its right edge.
    cuts = np.searchsorted(values, edges[1:-1], side="left")
    histogram = np.diff(np.r_[0, np.r_[0, ends][cuts], n])
    best = _largest(counts, _TOP)
    far: dict[str, Any] = {"count": 0}
    if len(values) > 10:
        thinned = _thinned(np.repeat(values, counts) if n <= EXACT_ROWS else None, values, counts)
        fences = _fences(quantiles, thinned)
        if fences is not None:
            below, above = values < fences[0], values > fences[1]
            outside = below | above
            far = {"count": int(counts[outside].sum()), "lower": fences[0], "upper": fences[1]}
            if far["count"]:
                repeated = int(np.argmax(np.where(outside, counts, 0)))
                far.update(
                    most_common=float(values[repeated]), most_common_count=int(counts[repeated])
                )
    return {
        "unique": len(values),
        "top": [{"value": _plain(values[i]), "count": int(counts[i])} for i in best],
        "quantiles": {str(q): float(v) for q, v in zip(QUANTILES, quantiles, strict=True)},
        "histogram": {"counts": histogram.tolist(), "edges": edges.tolist()},
        "far": far,
    }


def _from_fine_bins(
    x: np.ndarray, low: float, high: float, scratch: np.ndarray, codes: np.ndarray
) -> dict[str, Any]:
    n = len(x)
    # Binning is monotonic in the value, so each fine bin holds a run of the sorted order.
    factor = _FINE / (high - low)
    np.subtract(x, low, out=scratch)
    scratch *= factor
    np.copyto(codes, scratch, casting="unsafe")  # truncates, as astype does
    np.minimum(codes, _FINE - 1, out=codes)
    fine = np.bincount(codes, minlength=_FINE)
    ends = np.cumsum(fine)
    starts = ends - fine

    def ranked(ranks: np.ndarray) -> np.ndarray:
        bins = np.searchsorted(ends, ranks, side="right")
        wanted = np.zeros(_FINE, dtype=bool)
        wanted[bins] = True
        chosen = np.sort(x[wanted[codes]])
        offsets = np.cumsum(np.where(wanted, fine, 0)) - np.where(wanted, fine, 0)
        return chosen[offsets[bins] + ranks - starts[bins]]

    quantiles = _interpolate(ranked, n)
    sample = x[:: max(1, n // _SAMPLE)]
    fences = _fences(quantiles, x[:: max(1, n // 100_000)])
    far: dict[str, Any] = {"count": 0}
    if fences is not None:
        outside = x[(x < fences[0]) | (x > fences[1])]
        far = {"count": len(outside), "lower": fences[0], "upper": fences[1]}
        if len(outside):
            values, counts = np.unique(outside, return_counts=True)
            repeated = int(np.argmax(counts))
            far.update(most_common=float(values[repeated]), most_common_count=int(counts[repeated]))
    top = _common(x, sample, codes, low, factor)  # before the estimate reuses ``codes``
    return {
        "unique": _distinct_estimate(x, scratch, codes.view(np.uint64)),
        "unique_estimated": True,
        "top": top,
        "quantiles": {str(q): float(v) for q, v in zip(QUANTILES, quantiles, strict=True)},
        "histogram": {
            "counts": fine.reshape(_BINS, -1).sum(axis=1).tolist(),
            "edges": np.linspace(low, high, _BINS + 1).tolist(),
        },
        "far": far,
    }


def _interpolate(ranked: Any, n: int) -> np.ndarray:
    """Quantiles with linear interpolation (numpy's default) from a function that returns
    the values of the given ranks in sorted order."""
    position = np.asarray(QUANTILES) * (n - 1)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, n - 1)
    values = ranked(np.r_[below, above])
    low, high = values[: len(below)], values[len(below) :]
    return low + (high - low) * (position - below)


def _thinned(whole: np.ndarray | None, values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """About 100,000 evenly spaced values of the sorted column (all of a small one)."""
    if whole is not None:
        return whole.astype(float)
    n = int(counts.sum())
    ranks = np.arange(0, n, max(1, n // 100_000))
    return values[np.searchsorted(np.cumsum(counts), ranks, side="right")].astype(float)


def _fences(quantiles: np.ndarray, thinned: np.ndarray) -> tuple[float, float] | None:
    """Far-value limits: beyond Q1 - 3 IQR or Q3 + 3 IQR and also 5 robust z-scores out
    (the MAD from about 100,000 values: as good as from all, far cheaper)."""
    q1, median, q3 = (quantiles[QUANTILES.index(q)] for q in (0.25, 0.5, 0.75))
    iqr = q3 - q1
    mad = 1.4826 * float(np.median(np.abs(thinned - median)))
    if iqr <= 0 or mad <= 0:
        return None
    return (
        float(min(q1 - FENCE * iqr, median - ROBUST_Z * mad)),
        float(max(q3 + FENCE * iqr, median + ROBUST_Z * mad)),
    )


def _distinct_estimate(x: np.ndarray, scratch: np.ndarray, spare: np.ndarray) -> int:
    """Distinct values by linear counting: hash into a bitmap at least as large as the
    column and read the count off the share of empty slots (standard error about 0.1%
    at a million values). ``scratch`` and ``spare`` are arrays of ``x``'s size to reuse."""
    np.add(x, 0.0, out=scratch)  # makes -0.0 equal to 0.0
    bits = scratch.view(np.uint64)
    slots = 1 << min(24, max(16, math.ceil(math.log2(len(x)))))
    # splitmix64's finaliser: every input bit moves the top bits (a weaker mix counted
    # integer-valued floats, whose low bits are all zero, 8% high).
    for shift, factor in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
        np.right_shift(bits, np.uint64(shift), out=spare)
        bits ^= spare
        bits *= np.uint64(factor)
    np.right_shift(bits, np.uint64(31), out=spare)
    bits ^= spare
    bits >>= np.uint64(64 - slots.bit_length() + 1)
    seen = np.zeros(slots, dtype=bool)
    seen[bits] = True
    empty = slots - int(np.count_nonzero(seen))
    if empty == 0:
        return len(x)
    return int(min(len(x), round(-slots * math.log(empty / slots))))


def _common(
    x: np.ndarray, sample: np.ndarray, codes: np.ndarray, low: float, factor: float
) -> list[dict[str, Any]]:
    """The values a sample sees more than once, counted exactly in the whole column.

    A value's copies all sit in its fine bin (``codes``, made with ``low`` and
    ``factor``): one pass picks out the candidates' bins, and they are counted there.
    """
    values, counts = np.unique(sample, return_counts=True)
    best = _largest(counts, _TOP)
    candidates = values[best][counts[best] > 1]
    if len(candidates) == 0:
        return []
    bins = np.minimum(((candidates - low) * factor).astype(np.intp), _FINE - 1)
    wanted = np.zeros(_FINE, dtype=bool)
    wanted[bins] = True
    near = x[wanted[codes]]
    exact = [(int(np.count_nonzero(near == v)), float(v)) for v in candidates]
    exact.sort(key=lambda pair: (-pair[0], pair[1]))
    return [{"value": _plain(v), "count": c} for c, v in exact]


def _largest(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values, largest first (ties by position)."""
    if len(values) > k:
        candidates = np.argpartition(-values, k - 1)[:k]
        candidates.sort()
    else:
        candidates = np.arange(len(values))
    return candidates[np.argsort(-values[candidates], kind="stable")]


def _plain(value: Any) -> Any:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        number = float(value)
        return int(number) if abs(number) < 2**53 else number
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
