"""Column sketches: what a profile keeps of a column. Windows merge into the sketch of
their rows together, sketches survive JSON, and values outside the reference still count.
Expected values come from numpy on the raw values."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from loopml.monitoring import profile
from loopml.monitoring.sketch import (
    BINS,
    CAPACITY,
    EXACT_LIMIT,
    FENCE,
    CategorySketch,
    NumericSketch,
    SketchMismatch,
    sketch_from_dict,
)


def window(reference: NumericSketch, values: np.ndarray) -> NumericSketch:
    sketch = NumericSketch.empty_like(reference)
    sketch.update(values)
    return sketch


def with_gaps(rng: np.random.Generator, size: int, loc: float = 0.0) -> np.ndarray:
    """Normal values with some NaN, infinities and far-out values planted."""
    values = rng.normal(loc, 1.0, size)
    values[rng.choice(size, size // 20, replace=False)] = np.nan
    values[rng.choice(size, 3, replace=False)] = np.inf
    values[rng.choice(size, size // 50, replace=False)] = rng.choice([-40.0, 55.0], size // 50)
    return values


def fences(reference: np.ndarray) -> tuple[float, float]:
    """Tukey's far-out fences of the reference (quartiles as the lower order statistic)."""
    finite = reference[np.isfinite(reference)]
    q1, q3 = np.quantile(finite, [0.25, 0.75], method="lower")
    return q1 - FENCE * (q3 - q1), q3 + FENCE * (q3 - q1)


@pytest.mark.parametrize("sizes", [(700, 900), (1500, 1800), (4000, 6000)])
def test_merged_windows_equal_the_sketch_of_their_rows_together(sizes: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(sizes))
    ref_values = rng.normal(0.0, 1.0, 5000)
    reference = NumericSketch.of_reference(ref_values)
    a, b = with_gaps(rng, sizes[0]), with_gaps(rng, sizes[1], loc=0.3)
    merged = window(reference, a).merge(window(reference, b))
    whole = window(reference, np.concatenate([a, b]))

    assert np.array_equal(merged.counts, whole.counts)
    np.testing.assert_allclose(merged.sums, whole.sums, rtol=1e-12, atol=1e-9)
    assert (merged.missing, merged.outliers) == (whole.missing, whole.outliers)
    assert (merged.minimum, merged.maximum) == (whole.minimum, whole.maximum)

    # ... and both match the raw values.
    both = np.concatenate([a, b])
    finite = both[np.isfinite(both)]
    low, high = fences(ref_values)
    assert merged.rows == both.size
    assert merged.present == finite.size
    assert merged.missing == both.size - finite.size  # NaN and infinities
    assert merged.outliers == np.count_nonzero((finite < low) | (finite > high)) > 0
    assert (merged.minimum, merged.maximum) == (finite.min(), finite.max())
    assert merged.mean == pytest.approx(finite.mean(), rel=1e-9)
    assert merged.std == pytest.approx(finite.std(), rel=1e-9)
    assert merged.sums.sum() == pytest.approx(finite.sum(), rel=1e-9)


def test_reference_sketch_reads_the_column() -> None:
    rng = np.random.default_rng(5)
    values = with_gaps(rng, 8000)
    sketch = NumericSketch.of_reference(values)
    finite = values[np.isfinite(values)]
    low, high = fences(values)
    assert (sketch.low, sketch.high) == (pytest.approx(low), pytest.approx(high))
    assert sketch.outliers == np.count_nonzero((finite < low) | (finite > high))
    assert sketch.missing == values.size - finite.size
    assert sketch.present == finite.size and sketch.rows == values.size
    assert sketch.mean == pytest.approx(finite.mean()) and sketch.std == pytest.approx(finite.std())
    assert sketch.counts[0] == 0  # nothing below the reference's own minimum
    # Quantile bins on values without ties: BINS of them, each 1/BINS of the rows.
    continuous = rng.normal(size=8000)
    binned = NumericSketch.of_reference(continuous)
    assert not binned.by_value
    assert binned.edges.size == BINS + 1
    inner = binned.counts[1:-1]
    assert inner.min() >= continuous.size / BINS - 1 and inner.max() <= continuous.size / BINS + 1


def test_windows_of_different_references_do_not_merge() -> None:
    rng = np.random.default_rng(7)
    one = NumericSketch.of_reference(rng.normal(size=3000))
    other = NumericSketch.of_reference(rng.normal(size=3000))
    values = rng.normal(size=100)
    with pytest.raises(SketchMismatch, match="different references"):
        window(one, values).merge(window(other, values))


def test_numeric_sketches_survive_json() -> None:
    rng = np.random.default_rng(11)
    reference = NumericSketch.of_reference(with_gaps(rng, 5000))
    small = window(reference, with_gaps(rng, 300))  # keeps its values
    large = window(reference, with_gaps(rng, 5000))  # does not
    empty = NumericSketch.empty_like(reference)  # no values: min and max are unknown
    unprofiled = NumericSketch.of_reference(np.full(10, np.nan))  # no fences
    wrong_type = NumericSketch.empty_like(reference)
    wrong_type.update(np.array([1.0, np.nan]), invalid=1)  # one value was text
    for sketch in (reference, small, large, empty, unprofiled, wrong_type):
        text = json.dumps(sketch.to_dict(), allow_nan=False)  # strict JSON
        back = sketch_from_dict(json.loads(text))
        assert isinstance(back, NumericSketch)
        assert np.array_equal(back.edges, sketch.edges)
        assert np.array_equal(back.counts, sketch.counts)
        assert np.array_equal(back.sums, sketch.sums)
        for name in ("missing", "invalid", "outliers", "total", "squares", "by_value"):
            assert getattr(back, name) == getattr(sketch, name), name
        for name in ("low", "high", "minimum", "maximum"):
            np.testing.assert_equal(getattr(back, name), getattr(sketch, name))
        if sketch.exact is None:
            assert back.exact is None
        else:
            assert np.array_equal(back.exact, sketch.exact)
        # A round-tripped window still merges with the original.
        if any(sketch is s for s in (small, large, empty, wrong_type)):
            assert back.merge(sketch).present == 2 * sketch.present


def test_category_sketches_survive_json() -> None:
    reference = profile(pa.table({"c": ["a", "b", "b", None, "c"]}))
    current = profile(pa.table({"c": ["a", "z", "z", None, None, "y"]}), reference)
    for sketch in (reference.columns["c"], current.columns["c"]):
        back = sketch_from_dict(json.loads(json.dumps(sketch.to_dict(), allow_nan=False)))
        assert back == sketch
    assert back.unseen_values() == ["z", "y"]


def test_unknown_sketch_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown sketch kind 'histogram'"):
        sketch_from_dict({"kind": "histogram"})


def test_values_beyond_the_reference_range_are_counted_in_the_outer_bins() -> None:
    rng = np.random.default_rng(13)
    ref_values = rng.uniform(0.0, 1.0, 5000)
    reference = NumericSketch.of_reference(ref_values)
    inside = rng.uniform(ref_values.min(), ref_values.max(), 200)
    inside = inside[inside < ref_values.max()]
    below, above = np.array([-5.0, -1.0]), np.array([2.0, 7.0, 3.0])
    sketch = window(reference, np.concatenate([inside, below, above]))

    assert sketch.counts[0] == 2 and sketch.sums[0] == pytest.approx(-6.0)
    assert sketch.counts[-1] == 3 and sketch.sums[-1] == pytest.approx(12.0)
    assert sketch.present == inside.size + 5
    assert (sketch.minimum, sketch.maximum) == (-5.0, 7.0)
    # The outer bins sit at their own values' mean, not at the reference's edges.
    positions, weights = sketch.atoms()
    assert positions[0] == pytest.approx(-3.0) and weights[0] == 2
    assert positions[-1] == pytest.approx(4.0) and weights[-1] == 3


def test_few_distinct_values_are_binned_one_value_a_bin() -> None:
    rng = np.random.default_rng(17)
    values = rng.choice([10.0, 1.0, 5.0, 2.0], size=4000, p=[0.1, 0.4, 0.3, 0.2])
    reference = NumericSketch.of_reference(values)
    assert reference.by_value
    assert reference.edges.tolist() == [1.0, 2.0, 5.0, 10.0]
    distinct, counts = np.unique(values, return_counts=True)
    positions, weights = reference.atoms()  # every bin is a single value
    assert positions.tolist() == distinct.tolist()
    assert weights.tolist() == counts.tolist()

    current = rng.choice([1.0, 2.0, 5.0, 10.0], size=500)
    sketch = window(reference, current)
    assert sketch.by_value
    assert sketch.counts[1:].tolist() == [np.count_nonzero(current == v) for v in distinct]


def test_at_most_bins_distinct_values_are_kept_by_value() -> None:
    values = np.repeat(np.arange(BINS, dtype=float), 3)
    assert NumericSketch.of_reference(values).by_value
    more = np.repeat(np.arange(BINS + 1, dtype=float), 3)
    assert not NumericSketch.of_reference(more).by_value


def test_exact_values_are_kept_up_to_the_limit() -> None:
    rng = np.random.default_rng(19)
    at_limit = rng.normal(size=EXACT_LIMIT)
    kept = NumericSketch.of_reference(at_limit)
    assert kept.exact is not None and np.array_equal(np.sort(kept.exact), np.sort(at_limit))
    assert kept.quantile(0.3) == pytest.approx(np.quantile(at_limit, 0.3))
    assert NumericSketch.of_reference(rng.normal(size=EXACT_LIMIT + 1)).exact is None

    a, b = rng.normal(size=1000), rng.normal(size=EXACT_LIMIT - 1000)
    together = window(kept, a).merge(window(kept, b))  # exactly at the limit: kept
    assert together.exact is not None
    assert np.array_equal(np.sort(together.exact), np.sort(np.concatenate([a, b])))

    one_more = together.merge(window(kept, np.array([0.5])))  # past the limit: dropped
    assert one_more.exact is None
    assert one_more.present == EXACT_LIMIT + 1
    # Without the values, quantiles come from the bins: still near the true ones.
    everything = np.concatenate([a, b, [0.5]])
    assert one_more.quantile(0.5) == pytest.approx(np.median(everything), abs=0.05)

    growing = window(kept, rng.normal(size=EXACT_LIMIT - 5))
    growing.update(rng.normal(size=10))
    assert growing.exact is None and growing.present == EXACT_LIMIT + 5


def test_merged_category_sketches_trim_to_capacity_and_keep_totals() -> None:
    rng = np.random.default_rng(23)
    a = CategorySketch({f"v{i}": int(rng.integers(1, 50)) for i in range(800)}, missing=4)
    b = CategorySketch({f"v{i}": int(rng.integers(1, 50)) for i in range(400, 1300)}, missing=6)
    merged = a.merge(b)

    summed = {k: a.counts.get(k, 0) + b.counts.get(k, 0) for k in set(a.counts) | set(b.counts)}
    assert len(summed) == 1300 > CAPACITY
    assert len(merged.counts) == CAPACITY
    assert merged.present == sum(summed.values())  # nothing is lost, the rest is "other"
    assert merged.other == sum(summed.values()) - sum(merged.counts.values()) > 0
    assert merged.missing == 10 and merged.rows == merged.present + 10
    # The values kept by name are the most common, with their full counts.
    smallest_kept = min(merged.counts.values())
    assert all(count <= smallest_kept for k, count in summed.items() if k not in merged.counts)
    assert all(summed[k] == count for k, count in merged.counts.items())


def test_a_reference_with_more_values_than_capacity_pools_the_rest() -> None:
    rng = np.random.default_rng(29)
    names = np.array([f"id{i}" for i in range(CAPACITY + 500)])
    values = np.concatenate([names, rng.choice(names[:10], 5000)])  # ten common values
    sketch = profile(pa.table({"c": values})).columns["c"]
    assert isinstance(sketch, CategorySketch)
    assert len(sketch.counts) == CAPACITY
    assert sketch.present == values.size
    assert sketch.other == values.size - sum(sketch.counts.values()) > 0
    assert set(names[:10]) <= set(sketch.counts)
    assert not sketch.complete  # the vocabulary is not all the reference had


def test_unseen_values_are_counted_against_the_reference_vocabulary() -> None:
    reference = profile(pd.DataFrame({"c": ["a", "b", "c", None] * 25}))
    first = profile(pd.DataFrame({"c": ["a", "d", "e", "d", None, "b", "d"]}), reference)
    second = profile(pd.DataFrame({"c": ["e", "f", "a"]}), reference)
    one = first.columns["c"]
    assert isinstance(one, CategorySketch)
    assert one.vocabulary == frozenset({"a", "b", "c"})
    assert one.unseen == 4  # d three times, e once; the missing value is not unseen
    assert one.missing == 1
    assert one.unseen_values() == ["d", "e"]  # most common first
    both = first.merge(second).columns["c"]
    assert both.unseen == 6
    assert both.unseen_values(limit=2) == ["d", "e"]
    assert reference.columns["c"].unseen == 0
