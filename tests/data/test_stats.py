"""Column statistics: exact figures for small, integer and few-valued columns, and for a
large column of many values exact quantiles with an estimated count of distinct values."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from loopml.data.stats import EXACT_ROWS, QUANTILES, Scratch, summarise

LARGE = EXACT_ROWS + 100_003  # past the size where every column is sorted


def chunked(values: np.ndarray, mask: np.ndarray | None = None, parts: int = 7) -> pa.ChunkedArray:
    """Values as a reader gives them: many chunks, missing cells as nulls."""
    array = pa.array(values, mask=mask)
    step = -(-len(array) // parts)
    return pa.chunked_array([array.slice(i, step) for i in range(0, len(array), step)])


def quantiles(summary: dict) -> np.ndarray:
    return np.array([summary["quantiles"][str(q)] for q in QUANTILES])


def test_large_column_of_many_values_has_exact_quantiles_and_an_estimated_count() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(50, 10, LARGE).round(4)
    x[rng.random(LARGE) < 0.03] = np.nan
    x[:5_000] = -7.25  # one value far below the rest, repeated: a placeholder
    x[5_000:5_010] = np.inf  # not a number to describe
    summary = summarise(chunked(x, mask=np.isnan(x)))
    finite = x[np.isfinite(x)]
    assert summary["rows"] == LARGE
    assert summary["missing"] == LARGE - len(finite)
    np.testing.assert_array_equal(quantiles(summary), np.quantile(finite, QUANTILES))
    assert summary["min"] == finite.min() and summary["max"] == finite.max()
    assert summary["mean"] == pytest.approx(finite.mean(), rel=1e-12)
    assert summary["std"] == pytest.approx(finite.std(), rel=1e-12)
    exact = len(np.unique(finite))
    assert summary["unique_estimated"] is True
    assert abs(summary["unique"] - exact) <= 0.01 * exact
    assert summary["top"][0] == {"value": -7.25, "count": 5_000}
    counts, _ = np.histogram(finite, bins=20)
    assert sum(summary["histogram"]["counts"]) == len(finite)
    # Bins come from the same edges; a value within rounding of an edge may fall either side.
    assert np.abs(np.array(summary["histogram"]["counts"]) - counts).sum() <= 10
    far = summary["far"]
    outside = (finite < far["lower"]) | (finite > far["upper"])
    assert far["count"] == int(outside.sum()) >= 5_000
    assert far["most_common"] == -7.25 and far["most_common_count"] == 5_000


def test_large_integer_column_is_counted_exactly() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(-500, 20_000, LARGE)
    summary = summarise(chunked(x))
    values, counts = np.unique(x, return_counts=True)
    assert summary["unique"] == len(values)
    assert "unique_estimated" not in summary
    assert summary["top"][0]["count"] == counts.max()
    np.testing.assert_array_equal(quantiles(summary), np.quantile(x, QUANTILES))
    assert summary["histogram"]["counts"] == np.histogram(x, bins=20)[0].tolist()


def test_identifiers_spread_over_a_wide_range_are_all_counted() -> None:
    ids = np.random.default_rng(2).permutation(np.arange(LARGE, dtype=np.int64) * 7_919 + 2**40)
    summary = summarise(chunked(ids))
    assert summary["unique"] == LARGE  # what tells an identifier column
    assert "unique_estimated" not in summary


def test_integers_beyond_float_precision_keep_their_digits() -> None:
    big = 2**60 + 1
    summary = summarise(pa.chunked_array([pa.array([big, big, 5, 6], pa.int64())]))
    assert summary["top"][0] == {"value": big, "count": 2}


def test_large_column_of_few_float_values_is_counted_exactly() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 40, LARGE) * 0.25
    summary = summarise(chunked(x))
    _, counts = np.unique(x, return_counts=True)
    assert summary["unique"] == 40 and "unique_estimated" not in summary
    assert [t["count"] for t in summary["top"]] == sorted(counts, reverse=True)[:10]
    np.testing.assert_array_equal(quantiles(summary), np.quantile(x, QUANTILES))


@pytest.mark.parametrize("rows", [1_000, LARGE])
def test_negative_zero_is_zero(rows: int) -> None:
    x = np.zeros(rows)
    x[::2] = -0.0
    x[-1] = 1.0
    summary = summarise(chunked(x))
    assert summary["unique"] == 2
    assert summary["top"][0] == {"value": 0, "count": rows - 1}


def test_small_column_is_exact_to_the_last_value() -> None:
    x = np.random.default_rng(4).normal(size=5_000).round(2)
    summary = summarise(chunked(x))
    values, counts = np.unique(x, return_counts=True)
    assert summary["unique"] == len(values) and "unique_estimated" not in summary
    assert summary["top"][0]["count"] == counts.max()
    np.testing.assert_array_equal(quantiles(summary), np.quantile(x, QUANTILES))


@pytest.mark.parametrize("rows", [10, LARGE])
def test_constant_and_empty_columns(rows: int) -> None:
    constant = summarise(chunked(np.full(rows, 3.5)))
    assert constant["unique"] == 1
    assert constant["top"] == [{"value": 3.5, "count": rows}]
    assert constant["far"]["count"] == 0
    empty = summarise(pa.chunked_array([pa.nulls(rows, pa.float64())]))
    assert empty["missing"] == rows and empty["unique"] == 0 and "quantiles" not in empty


def test_text_columns_are_counted_by_value() -> None:
    column = pa.chunked_array([["a", "b", None], ["a", "c", "a"]])
    summary = summarise(column)
    assert summary == {
        "rows": 6,
        "missing": 1,
        "unique": 3,
        "top": [{"value": "a", "count": 3}, {"value": "b", "count": 1}, {"value": "c", "count": 1}],
    }


def test_unsigned_integers_beyond_int64_keep_their_size() -> None:
    summary = summarise(pa.chunked_array([pa.array([2**64 - 1, 1, 2], pa.uint64())]))
    assert summary["max"] == float(2**64 - 1)
    assert summary["min"] == 1.0


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(8).integers(0, 2_000_000, 1_000_000) * 1.0,  # whole numbers
        np.random.default_rng(9).integers(0, 10**7, 1_000_000) / 100,  # prices
    ],
    ids=["whole-floats", "prices"],
)
def test_distinct_estimate_is_close_for_floats_of_any_shape(values: np.ndarray) -> None:
    summary = summarise(chunked(values))
    exact = len(np.unique(values))
    assert summary["unique_estimated"] is True
    assert abs(summary["unique"] - exact) <= 0.005 * exact


def test_a_range_wider_than_the_largest_float_is_summarised() -> None:
    x = np.random.default_rng(10).uniform(-1, 1, LARGE) * 1.7e308
    summary = summarise(chunked(x))
    np.testing.assert_array_equal(quantiles(summary), np.quantile(x, QUANTILES))


def test_work_arrays_lent_from_column_to_column_leave_no_trace() -> None:
    rng = np.random.default_rng(11)
    longer = rng.normal(0, 1, LARGE)
    shorter = rng.normal(100, 5, LARGE - 50_000)
    shorter[rng.random(len(shorter)) < 0.1] = np.nan
    work = Scratch()
    summarise(chunked(longer), work)
    lent = summarise(chunked(shorter, mask=np.isnan(shorter)), work)
    whole = summarise(pa.chunked_array([pa.array(shorter, mask=np.isnan(shorter))]))
    assert lent == whole  # one chunk is read in place, many are gathered
    finite = shorter[np.isfinite(shorter)]
    assert lent["missing"] == len(shorter) - len(finite)
    assert lent["min"] == finite.min() and lent["max"] == finite.max()
    np.testing.assert_array_equal(quantiles(lent), np.quantile(finite, QUANTILES))
