"""Mergeable column sketches: what a profile keeps of a column, in memory that does not
grow with the rows.

A numeric sketch counts values into bins whose edges the *reference* fixes (its
quantiles, or its distinct values when there are few), and keeps each bin's sum, so a
window's sketch is the element-wise sum of its segments' sketches and a bin's values sit
at their own mean. Up to ``EXACT_LIMIT`` values are also kept as they are, so small
samples are tested exactly. A category sketch keeps counts of at most ``CAPACITY``
values and pools the rest as "other".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

BINS = 200  # reference-quantile bins: a binned CDF is within 1/BINS of the true one
EXACT_LIMIT = 2048  # values kept as they are, for exact tests on small samples
CAPACITY = 1000  # distinct categories counted by name
FENCE = 3.0  # IQR multiples beyond the quartiles: Tukey's "far out" values


class SketchMismatch(ValueError):
    """Two sketches with different bins (made against different references)."""


def reference_edges(ordered: np.ndarray) -> tuple[np.ndarray, bool]:
    """Bin edges for a reference column's sorted finite values: its distinct values when
    there are at most ``BINS`` (then every bin holds one value and binned tests are
    exact), otherwise its ``BINS``-quantiles; and which of the two it is."""
    n = ordered.size
    if n == 0:
        return np.zeros(0), True
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    if starts.size <= BINS:
        return ordered[starts].astype(float), True
    positions = np.round(np.linspace(0.0, 1.0, BINS + 1) * (n - 1)).astype(np.int64)
    return np.unique(ordered[positions]).astype(float), False


@dataclass
class NumericSketch:
    """Counts of a numeric column in bins fixed by a reference.

    Bin 0 holds values below ``edges[0]``, bin ``i`` (1..k-1) values in
    ``[edges[i-1], edges[i])`` and bin ``k`` values from ``edges[-1]`` up, so a window's
    values beyond the reference's range are still placed, at their own mean.
    """

    edges: np.ndarray
    counts: np.ndarray
    sums: np.ndarray
    missing: int = 0
    invalid: int = 0  # values that were not numbers (text in a numeric column)
    low: float = float("nan")  # outlier fences, fixed by the reference
    high: float = float("nan")
    outliers: int = 0
    minimum: float = float("inf")
    maximum: float = float("-inf")
    total: float = 0.0
    squares: float = 0.0
    exact: np.ndarray | None = field(default=None)
    by_value: bool = False  # every bin is one reference value

    kind = "numeric"

    @classmethod
    def empty_like(cls, reference: NumericSketch) -> NumericSketch:
        k = reference.edges.size + 1
        return cls(
            reference.edges,
            np.zeros(k, np.int64),
            np.zeros(k),
            low=reference.low,
            high=reference.high,
            exact=np.zeros(0),
            by_value=reference.by_value,
        )

    @classmethod
    def of_reference(cls, values: np.ndarray, missing: int = 0, invalid: int = 0) -> NumericSketch:
        """The sketch of a reference column: its edges, fences and counts, read off one
        sort of its values."""
        values = np.asarray(values, dtype=float)
        ordered = np.sort(values[np.isfinite(values)])
        n = ordered.size
        edges, by_value = reference_edges(ordered)
        k = edges.size + 1
        sketch = cls(edges, np.zeros(k, np.int64), np.zeros(k), exact=None, by_value=by_value)
        sketch.missing = missing + int(values.size - n) - invalid
        sketch.invalid = invalid
        if n == 0:
            sketch.exact = np.zeros(0)
            return sketch
        q1, q3 = ordered[int(0.25 * (n - 1))], ordered[int(0.75 * (n - 1))]
        sketch.low, sketch.high = q1 - FENCE * (q3 - q1), q3 + FENCE * (q3 - q1)
        # Bin j holds the values below edges[j] and not below edges[j - 1].
        bounds = np.r_[0, np.searchsorted(ordered, edges, side="left"), n]
        running = np.r_[0.0, np.cumsum(ordered)]
        sketch.counts = np.diff(bounds).astype(np.int64)
        sketch.sums = np.diff(running[bounds])
        sketch.total = float(running[-1])
        sketch.squares = float(np.dot(ordered, ordered))
        sketch.minimum, sketch.maximum = float(ordered[0]), float(ordered[-1])
        below = np.searchsorted(ordered, sketch.low, side="left")
        above = n - np.searchsorted(ordered, sketch.high, side="right")
        sketch.outliers = int(below + above)
        sketch.exact = ordered.copy() if n <= EXACT_LIMIT else None
        return sketch

    @property
    def rows(self) -> int:
        """Values seen, missing and invalid included."""
        return int(self.counts.sum()) + self.missing + self.invalid

    @property
    def present(self) -> int:
        return int(self.counts.sum())

    @property
    def mean(self) -> float:
        return self.total / self.present if self.present else float("nan")

    @property
    def std(self) -> float:
        n = self.present
        if n == 0:
            return float("nan")
        return float(np.sqrt(max(self.squares / n - (self.total / n) ** 2, 0.0)))

    def update(self, values: np.ndarray, missing: int = 0, invalid: int = 0) -> None:
        """Add values (NaN and infinities count as missing)."""
        values = np.asarray(values, dtype=float)
        finite_mask = np.isfinite(values)
        finite = values if finite_mask.all() else values[finite_mask]
        # Values that were not numbers arrive as NaN: they count as invalid, not missing.
        self.missing += missing + int(values.size - finite.size) - invalid
        self.invalid += invalid
        if finite.size == 0:
            return
        k = self.edges.size + 1
        where = np.searchsorted(self.edges, finite, side="right")
        self.counts += np.bincount(where, minlength=k)
        self.sums += np.bincount(where, weights=finite, minlength=k)
        self.total += float(finite.sum())
        self.squares += float(np.dot(finite, finite))
        self.minimum = min(self.minimum, float(finite.min()))
        self.maximum = max(self.maximum, float(finite.max()))
        if np.isfinite(self.low):
            self.outliers += int(np.count_nonzero((finite < self.low) | (finite > self.high)))
        self._keep(finite)

    def _keep(self, finite: np.ndarray) -> None:
        if self.exact is None:
            return
        if self.exact.size + finite.size > EXACT_LIMIT:
            self.exact = None
        else:
            self.exact = np.concatenate([self.exact, finite])

    def merge(self, other: NumericSketch) -> NumericSketch:
        """The sketch of both windows together."""
        if not np.array_equal(self.edges, other.edges):
            raise SketchMismatch("the sketches were made against different references")
        merged = NumericSketch(
            self.edges,
            self.counts + other.counts,
            self.sums + other.sums,
            self.missing + other.missing,
            self.invalid + other.invalid,
            self.low,
            self.high,
            self.outliers + other.outliers,
            min(self.minimum, other.minimum),
            max(self.maximum, other.maximum),
            self.total + other.total,
            self.squares + other.squares,
            None,
            self.by_value,
        )
        if self.exact is not None and other.exact is not None:
            merged.exact = np.zeros(0)
            merged._keep(np.concatenate([self.exact, other.exact]))
        return merged

    def atoms(self) -> tuple[np.ndarray, np.ndarray]:
        """Each non-empty bin as (its values' mean, its count)."""
        full = self.counts > 0
        return self.sums[full] / self.counts[full], self.counts[full].astype(float)

    def quantile(self, q: float) -> float:
        """An approximate quantile (exact when the values were kept)."""
        if self.exact is not None and self.exact.size:
            return float(np.quantile(self.exact, q))
        positions, weights = self.atoms()
        if weights.size == 0:
            return float("nan")
        cumulative = np.cumsum(weights) / weights.sum()
        return float(positions[min(int(np.searchsorted(cumulative, q)), positions.size - 1)])

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "edges": self.edges.tolist(),
            "counts": self.counts.tolist(),
            "sums": self.sums.tolist(),
            "missing": self.missing,
            "invalid": self.invalid,
            "low": _finite_or_none(self.low),
            "high": _finite_or_none(self.high),
            "outliers": self.outliers,
            "min": _finite_or_none(self.minimum),
            "max": _finite_or_none(self.maximum),
            "total": self.total,
            "squares": self.squares,
            "exact": None if self.exact is None else self.exact.tolist(),
            "by_value": self.by_value,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NumericSketch:
        def number(key: str, default: float) -> float:
            value = data.get(key)
            return default if value is None else float(value)

        exact = data.get("exact")
        return cls(
            np.asarray(data["edges"], dtype=float),
            np.asarray(data["counts"], dtype=np.int64),
            np.asarray(data["sums"], dtype=float),
            int(data["missing"]),
            int(data.get("invalid", 0)),
            number("low", float("nan")),
            number("high", float("nan")),
            int(data.get("outliers", 0)),
            number("min", float("inf")),
            number("max", float("-inf")),
            float(data["total"]),
            float(data["squares"]),
            None if exact is None else np.asarray(exact, dtype=float),
            bool(data.get("by_value", False)),
        )


@dataclass
class CategorySketch:
    """Counts of a categorical column's values (as text), at most ``CAPACITY`` by name.

    ``vocabulary`` is the reference's set of values; a window counts values outside it as
    unseen.
    """

    counts: dict[str, int] = field(default_factory=dict)
    other: int = 0  # values counted but no longer by name
    missing: int = 0
    unseen: int = 0
    vocabulary: frozenset[str] | None = None
    complete: bool = True  # False once a reference had more values than CAPACITY

    kind = "categorical"

    @classmethod
    def empty_like(cls, reference: CategorySketch) -> CategorySketch:
        return cls(vocabulary=reference.vocabulary, complete=reference.complete)

    @property
    def rows(self) -> int:
        return sum(self.counts.values()) + self.other + self.missing

    @property
    def present(self) -> int:
        return sum(self.counts.values()) + self.other

    def _trim(self) -> None:
        if len(self.counts) <= CAPACITY:
            return
        kept = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))[:CAPACITY]
        self.other += sum(self.counts.values()) - sum(count for _, count in kept)
        self.counts = dict(kept)

    def merge(self, other: CategorySketch) -> CategorySketch:
        merged = CategorySketch(
            dict(self.counts),
            self.other + other.other,
            self.missing + other.missing,
            self.unseen + other.unseen,
            self.vocabulary,
            self.complete and other.complete,
        )
        for value, count in other.counts.items():
            merged.counts[value] = merged.counts.get(value, 0) + count
        merged._trim()
        return merged

    def unseen_values(self, limit: int = 5) -> list[str]:
        """The most common values the reference never had."""
        if self.vocabulary is None or not self.complete:
            return []
        new = [
            (count, value) for value, count in self.counts.items() if value not in self.vocabulary
        ]
        return [value for _, value in sorted(new, key=lambda item: (-item[0], item[1]))[:limit]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "counts": self.counts,
            "other": self.other,
            "missing": self.missing,
            "unseen": self.unseen,
            "vocabulary": None if self.vocabulary is None else sorted(self.vocabulary),
            "complete": self.complete,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CategorySketch:
        vocabulary = data.get("vocabulary")
        return cls(
            {str(k): int(v) for k, v in data["counts"].items()},
            int(data.get("other", 0)),
            int(data.get("missing", 0)),
            int(data.get("unseen", 0)),
            None if vocabulary is None else frozenset(vocabulary),
            bool(data.get("complete", True)),
        )


Sketch = NumericSketch | CategorySketch


def sketch_from_dict(data: dict[str, Any]) -> Sketch:
    if data.get("kind") == "numeric":
        return NumericSketch.from_dict(data)
    if data.get("kind") == "categorical":
        return CategorySketch.from_dict(data)
    raise ValueError(f"unknown sketch kind {data.get('kind')!r}")


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
