"""Drift tests against scipy on the raw values: exact on small samples, within a stated
bound of it on binned large ones; and the default choice of test, as Evidently makes it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon as scipy_js

from loopml.core.errors import InvalidInput
from loopml.monitoring import compare, profile
from loopml.monitoring.sketch import BINS, CategorySketch, NumericSketch
from loopml.monitoring.stattests import (
    TESTS,
    chisquare,
    default_test,
    jensenshannon,
    ks,
    psi,
    wasserstein,
    ztest,
)


def numeric(ref: np.ndarray, cur: np.ndarray) -> tuple[NumericSketch, NumericSketch]:
    reference = NumericSketch.of_reference(ref)
    current = NumericSketch.empty_like(reference)
    current.update(cur)
    return reference, current


def categories(ref: list[str], cur: list[str]) -> tuple[CategorySketch, CategorySketch]:
    reference = profile(pa.table({"c": pa.array(ref, pa.string())}))
    current = profile(pa.table({"c": pa.array(cur, pa.string())}), reference)
    return reference.columns["c"], current.columns["c"]  # type: ignore[return-value]


def union_counts(ref: list[str], cur: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Counts of both over the union of their values, with pandas."""
    counts = [pd.Series(ref).value_counts(), pd.Series(cur).value_counts()]
    both = pd.concat(counts, axis=1).fillna(0)
    return both.iloc[:, 0].to_numpy(float), both.iloc[:, 1].to_numpy(float)


# --- Kolmogorov-Smirnov ----------------------------------------------------------------

LARGE_KS = [  # (reference, current): samples too large to keep, distributions near enough
    ("same", lambda r: r.normal(0, 1, 20000), lambda r: r.normal(0, 1, 15000)),
    ("shift", lambda r: r.normal(0, 1, 20000), lambda r: r.normal(0.03, 1, 15000)),
    ("spread", lambda r: r.normal(0, 1, 20000), lambda r: r.normal(0, 1.06, 15000)),
    ("skewed", lambda r: r.exponential(1, 30000), lambda r: r.exponential(1.03, 8000)),
]


@pytest.mark.parametrize(("name", "make_ref", "make_cur"), LARGE_KS, ids=[c[0] for c in LARGE_KS])
def test_binned_ks_is_within_one_bin_of_scipy(name: str, make_ref, make_cur) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(len(name))
    ref, cur = make_ref(rng), make_cur(rng)
    reference, current = numeric(ref, cur)
    assert reference.exact is None and current.exact is None  # the binned path

    result = ks(reference, current, 0.05)
    exact = stats.ks_2samp(ref, cur, method="asymp")
    n = round(ref.size * cur.size / (ref.size + cur.size))
    assert 1e-8 < result.statistic < 1  # p-values that can be read back as a distance
    d = float(stats.kstwo.isf(result.statistic, n))
    # Bins hold 1/BINS of the reference each: between two edges the reference's CDF moves
    # by at most that, so the statistic read at the edges is at most that below the
    # supremum (plus one value, from rounding the quantile positions).
    assert exact.statistic - 1 / BINS - 1 / ref.size <= d <= exact.statistic + 1e-9
    assert result.statistic >= exact.pvalue * (1 - 1e-9)
    assert result.test == "ks" and result.threshold == 0.05
    assert result.drifted == (result.statistic < 0.05)


def test_binned_ks_finds_a_clear_shift_like_scipy() -> None:
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(0, 1, 20000), rng.normal(0.2, 1, 10000)
    result = ks(*numeric(ref, cur), 0.05)
    assert stats.ks_2samp(ref, cur).pvalue < 1e-20
    assert result.drifted and result.statistic < 1e-20


@pytest.mark.parametrize(("n", "m", "shift"), [(300, 200, 0.0), (1000, 800, 0.15), (40, 30, 1.0)])
def test_small_samples_get_scipys_exact_ks(n: int, m: int, shift: float) -> None:
    rng = np.random.default_rng(n)
    ref, cur = rng.normal(0, 1, n), rng.normal(shift, 1, m)
    cur[::17] = np.nan  # missing values are left out, as one would with scipy
    result = ks(*numeric(ref, cur), 0.05)
    expected = stats.ks_2samp(ref, cur[np.isfinite(cur)]).pvalue
    assert result.statistic == pytest.approx(expected, rel=1e-12)
    assert result.drifted == (expected < 0.05)


# --- Wasserstein -------------------------------------------------------------------------


def per_bin_gap(ref: np.ndarray, cur: np.ndarray, edges: np.ndarray) -> tuple[float, float]:
    """The exact Wasserstein distance as the integral of |F_ref - F_cur| over the raw values,
    and its lower bound sum over bins of |integral of (F_ref - F_cur) over the bin|."""
    grid = np.unique(np.concatenate([ref, cur, edges]))
    grid = grid[(grid >= min(ref.min(), cur.min())) & (grid <= max(ref.max(), cur.max()))]
    gap = (
        np.searchsorted(np.sort(ref), grid[:-1], side="right") / ref.size
        - np.searchsorted(np.sort(cur), grid[:-1], side="right") / cur.size
    )
    area = gap * np.diff(grid)
    per_bin = np.bincount(np.searchsorted(edges, grid[:-1], side="right"), weights=area)
    return float(np.abs(area).sum()), float(np.abs(per_bin).sum())


LARGE_W = [
    ("same", lambda r: r.normal(0, 1, 20000), lambda r: r.normal(0, 1, 20000)),
    ("shift", lambda r: r.normal(0, 1, 20000), lambda r: r.normal(0.3, 1, 12000)),
    ("spread", lambda r: r.normal(0, 1, 20000), lambda r: r.normal(0, 1.5, 12000)),
    ("far", lambda r: r.normal(5, 2, 20000), lambda r: r.normal(12, 2, 5000)),
    ("skewed", lambda r: r.lognormal(0, 0.7, 20000), lambda r: r.lognormal(0.1, 0.7, 9000)),
]


@pytest.mark.parametrize(("name", "make_ref", "make_cur"), LARGE_W, ids=[c[0] for c in LARGE_W])
def test_binned_wasserstein_is_close_to_scipy(name: str, make_ref, make_cur) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(100 + len(name))
    ref, cur = make_ref(rng), make_cur(rng)
    reference, current = numeric(ref, cur)
    assert reference.exact is None and current.exact is None

    result = wasserstein(reference, current, 0.1)
    norm = np.std(ref)
    expected = stats.wasserstein_distance(ref, cur) / norm
    exact, lower = per_bin_gap(ref, cur, reference.edges)
    assert exact / norm == pytest.approx(expected, rel=1e-9)  # the integral is scipy's
    # Binning puts each bin's values at their mean: the bin keeps its count and mean, so
    # the integral of F_ref - F_cur over each bin is unchanged, and both distances are at
    # least the sum of those integrals' sizes. They differ only inside bins where the two
    # CDFs cross; with 200 bins of 0.5% of the reference each, that is a small fraction of
    # the threshold: the tolerance is 0.005 reference deviations, 5% of the default 0.1.
    assert result.statistic >= lower / norm - 1e-12
    assert result.statistic == pytest.approx(expected, abs=0.005)
    assert result.drifted == (result.statistic > 0.1)


def test_small_samples_get_scipys_exact_wasserstein() -> None:
    rng = np.random.default_rng(41)
    ref, cur = rng.gamma(2.0, 3.0, 900), rng.gamma(2.2, 3.0, 1200)
    result = wasserstein(*numeric(ref, cur), 0.1)
    expected = stats.wasserstein_distance(ref, cur) / np.std(ref)
    assert result.statistic == pytest.approx(expected, rel=1e-12)
    assert result.drifted == (expected > 0.1)


def test_wasserstein_of_a_constant_reference_does_not_divide_by_zero() -> None:
    ref, cur = np.full(100, 3.0), np.full(100, 3.5)
    result = wasserstein(*numeric(ref, cur), 0.1)
    assert math.isfinite(result.statistic) and result.drifted


# --- Jensen-Shannon, PSI, chi-square, z-test -----------------------------------------------


def test_jensenshannon_equals_scipy_on_the_category_shares() -> None:
    rng = np.random.default_rng(43)
    ref = rng.choice(["a", "b", "c", "d"], 3000, p=[0.4, 0.3, 0.2, 0.1]).tolist()
    cur = rng.choice(["a", "b", "c", "new"], 2000, p=[0.2, 0.3, 0.3, 0.2]).tolist()  # no "d"
    p, q = union_counts(ref, cur)
    expected = scipy_js(p / p.sum(), q / q.sum())
    result = jensenshannon(*categories(ref, cur), 0.1)
    assert result.statistic == pytest.approx(expected, rel=1e-12)
    assert result.drifted == (expected > 0.1)
    same = jensenshannon(*categories(ref, ref), 0.1)
    assert same.statistic == pytest.approx(0.0, abs=1e-7) and not same.drifted


def hand_psi(p: np.ndarray, q: np.ndarray) -> float:
    p, q = np.maximum(p / p.sum(), 1e-4), np.maximum(q / q.sum(), 1e-4)
    return float(np.sum((q - p) * np.log(q / p)))


@pytest.mark.parametrize(
    "make_cur",
    [
        lambda r: r.normal(0.25, 1, 15000),
        lambda r: r.normal(0, 1.3, 15000),
        lambda r: np.abs(r.normal(0, 1, 15000)),  # every lower decile empty
    ],
    ids=["shift", "spread", "half"],
)
def test_psi_matches_a_hand_computation_on_reference_deciles(make_cur) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(47)
    ref, cur = rng.normal(0, 1, 20000), make_cur(rng)
    deciles = np.quantile(ref, np.arange(1, 10) / 10)
    p = np.bincount(np.searchsorted(deciles, ref, side="right"), minlength=10)
    q = np.bincount(np.searchsorted(deciles, cur, side="right"), minlength=10)
    expected = hand_psi(p.astype(float), q.astype(float))
    result = psi(*numeric(ref, cur), 0.1)
    # The sketch's decile bounds are reference values, np.quantile's lie between two
    # neighbouring ones: a few current values may sit in the next group. 1% covers that.
    assert result.statistic == pytest.approx(expected, rel=0.01)
    assert result.drifted == (expected > 0.1)


def test_psi_of_categories_floors_empty_shares() -> None:
    rng = np.random.default_rng(53)
    ref = rng.choice(["a", "b", "c"], 2000, p=[0.5, 0.3, 0.2]).tolist()
    cur = rng.choice(["a", "b", "z"], 1500, p=[0.3, 0.3, 0.4]).tolist()
    p, q = union_counts(ref, cur)
    result = psi(*categories(ref, cur), 0.1)
    assert result.statistic == pytest.approx(hand_psi(p, q), rel=1e-12)
    assert result.drifted


def test_chisquare_equals_scipy_on_the_counts() -> None:
    rng = np.random.default_rng(59)
    ref = rng.choice(["a", "b", "c", "d"], 800, p=[0.4, 0.3, 0.2, 0.1]).tolist()
    cur = rng.choice(["a", "b", "c", "d"], 600, p=[0.36, 0.32, 0.2, 0.12]).tolist()
    p, q = union_counts(ref, cur)
    expected = stats.chisquare(q, p / p.sum() * q.sum()).pvalue
    result = chisquare(*categories(ref, cur), 0.05)
    assert result.statistic == pytest.approx(expected, rel=1e-10)
    assert result.drifted == (expected < 0.05)


def test_chisquare_expects_an_unseen_value_half_a_time() -> None:
    ref = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    cur = ["a"] * 45 + ["b"] * 30 + ["c"] * 20 + ["new"] * 5
    # Pearson's statistic by hand, the reference count of "new" taken as 0.5.
    reference_counts = {"a": 50, "b": 30, "c": 20, "new": 0.5}
    current_counts = {"a": 45, "b": 30, "c": 20, "new": 5}
    total = sum(reference_counts.values())
    statistic = sum(
        (current_counts[k] - reference_counts[k] / total * 100) ** 2
        / (reference_counts[k] / total * 100)
        for k in reference_counts
    )
    expected = stats.chi2.sf(statistic, df=3)
    result = chisquare(*categories(ref, cur), 0.05)
    assert result.statistic == pytest.approx(expected, rel=1e-10)
    assert result.drifted  # 5 rows of a value expected half a time


def test_chisquare_of_few_numbers_equals_that_of_the_same_values_as_categories() -> None:
    """Numbers with few distinct values are compared as categories: the p-value is the one
    scipy gives for their value counts, whether the column holds 1, 2, 3 or "1", "2", "3"."""
    rng = np.random.default_rng(1)
    ref = rng.choice([1, 2, 3], size=600, p=[0.5, 0.3, 0.2])
    cur = rng.choice([1, 2, 3], size=600, p=[0.45, 0.33, 0.22])
    p, q = np.bincount(ref)[1:].astype(float), np.bincount(cur)[1:].astype(float)
    expected = stats.chisquare(q, p / p.sum() * q.sum()).pvalue
    as_text = chisquare(*categories(ref.astype(str).tolist(), cur.astype(str).tolist()), 0.05)
    as_numbers = chisquare(*numeric(ref.astype(float), cur.astype(float)), 0.05)
    assert as_text.statistic == pytest.approx(expected, rel=1e-10)
    assert as_numbers.statistic == pytest.approx(expected, rel=1e-10)


def two_proportion_z(x1: float, n1: float, x2: float, n2: float) -> float:
    pooled = (x1 + x2) / (n1 + n2)
    z = (x1 / n1 - x2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return math.erfc(abs(z) / math.sqrt(2))  # two-sided


@pytest.mark.parametrize(("yes_ref", "yes_cur"), [(0.7, 0.7), (0.7, 0.62), (0.3, 0.4)])
def test_ztest_is_a_two_proportion_test_on_the_most_common_value(
    yes_ref: float, yes_cur: float
) -> None:
    rng = np.random.default_rng(int(yes_cur * 100))
    ref = rng.choice(["yes", "no"], 900, p=[yes_ref, 1 - yes_ref]).tolist()
    cur = rng.choice(["yes", "no"], 700, p=[yes_cur, 1 - yes_cur]).tolist()
    top = max(("yes", "no"), key=ref.count)
    expected = two_proportion_z(ref.count(top), len(ref), cur.count(top), len(cur))
    result = ztest(*categories(ref, cur), 0.05)
    assert result.statistic == pytest.approx(expected, rel=1e-9)
    assert result.drifted == (expected < 0.05)


def test_ztest_of_one_value_in_both_is_no_drift() -> None:
    result = ztest(*categories(["x"] * 10, ["x"] * 20), 0.05)
    assert result.statistic == 1.0 and not result.drifted


@pytest.mark.parametrize("test", ["ks", "wasserstein"])
def test_numeric_tests_refuse_categories(test: str) -> None:
    with pytest.raises(InvalidInput, match=f"the {test} test needs numbers"):
        TESTS[test](*categories(["a", "b"], ["a"]), 0.1)


# --- the default test ----------------------------------------------------------------------


def chosen(ref: np.ndarray, cur: np.ndarray) -> str:
    reference = profile(pd.DataFrame({"x": ref}))
    current = profile(pd.DataFrame({"x": cur}), reference)
    return default_test(reference.columns["x"], current.columns["x"])


@pytest.mark.parametrize(
    ("rows", "small", "large"),
    [(1000, "ks", None), (1001, None, "wasserstein"), (5000, None, "wasserstein")],
)
def test_numbers_get_ks_up_to_1000_reference_rows_then_wasserstein(
    rows: int, small: str | None, large: str | None
) -> None:
    rng = np.random.default_rng(rows)
    assert chosen(rng.normal(size=rows), rng.normal(size=300)) == (small or large)


@pytest.mark.parametrize(
    ("values", "rows", "expected"),
    [
        (["a", "b", "c"], 1000, "chisquare"),
        (["a", "b"], 1000, "ztest"),
        (["a", "b", "c"], 1001, "jensenshannon"),
        (["a", "b"], 4000, "jensenshannon"),
    ],
)
def test_categories_get_chisquare_or_ztest_when_small_then_jensenshannon(
    values: list[str], rows: int, expected: str
) -> None:
    rng = np.random.default_rng(rows)
    assert chosen(rng.choice(values, rows), rng.choice(values, 200)) == expected


@pytest.mark.parametrize(
    ("distinct", "rows", "expected"),
    [
        (2, 500, "ztest"),
        (5, 500, "chisquare"),
        (6, 500, "ks"),
        (5, 3000, "jensenshannon"),
        (6, 3000, "wasserstein"),
        (5, 20000, "jensenshannon"),
        (6, 20000, "wasserstein"),
    ],
)
def test_numbers_with_at_most_five_values_are_compared_as_categories(
    distinct: int, rows: int, expected: str
) -> None:
    rng = np.random.default_rng(distinct * rows)
    ref = rng.integers(0, distinct, rows) * 10.0  # every value appears
    cur = rng.integers(0, distinct, 4000) * 10.0
    assert np.unique(np.concatenate([ref, cur])).size == distinct
    assert chosen(ref, cur) == expected


def test_distinct_values_are_counted_over_both_samples() -> None:
    """Evidently counts the distinct values of reference and current together."""
    rng = np.random.default_rng(61)
    ref = rng.integers(0, 4, 500).astype(float)  # four values
    cur = rng.integers(2, 8, 500).astype(float)  # four new ones: eight in all
    assert chosen(ref, cur) == "ks"
    cats = ["a", "b"]
    assert chosen(rng.choice(cats, 500), rng.choice(["a", "b", "c"], 500)) == "chisquare"


@pytest.mark.parametrize("offset", [-0.5, 0.5])
def test_new_values_of_a_large_few_valued_column_count_as_distinct(offset: float) -> None:
    """A large reference of five values (ratings 1..5) against a window whose values all
    lie half a step off them: ten distinct values in all, so they are compared as numbers,
    as Evidently would, and the half-step shift of every value is drift either way."""
    rng = np.random.default_rng(3)
    ref = rng.integers(1, 6, 10000).astype(float)
    cur = rng.integers(1, 6, 10000) + offset
    assert np.unique(np.concatenate([ref, cur])).size == 10
    expected = stats.wasserstein_distance(ref, cur) / np.std(ref)
    assert expected > 0.3
    assert chosen(ref, cur) == "wasserstein"
    reference = profile(pd.DataFrame({"x": ref}))
    report = compare(reference, profile(pd.DataFrame({"x": cur}), reference))
    assert report.drifted_columns == ["x"], report.columns[0].message
