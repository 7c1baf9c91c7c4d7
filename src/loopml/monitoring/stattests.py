"""Drift tests between a reference sketch and a window's sketch.

Each test returns a :class:`TestResult`. Tests on numbers use the values themselves when
both sketches kept them (small samples) and the binned distributions otherwise: a binned
Kolmogorov-Smirnov statistic is within one reference bin's mass of the exact one, and
Wasserstein distances place each bin's values at their mean. The default choice follows
Evidently's, so results read the same to its users: by the reference's size and the
number of distinct values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon as _js

from loopml.core.errors import InvalidInput
from loopml.monitoring.sketch import CategorySketch, NumericSketch, Sketch

SMALL = 1000  # a reference of at most this many rows gets a statistical test
FEW_VALUES = 5  # numbers with at most this many distinct values are compared as categories
_FLOOR = 1e-4  # share given to an empty bin in PSI and KL-type measures (as Evidently does)
_OTHER = "\x00other"


@dataclass(frozen=True)
class TestResult:
    """One drift test's outcome.

    ``statistic`` is a p-value for statistical tests (drift when below ``threshold``)
    and a distance for the others (drift when above it).
    """

    test: str
    statistic: float
    threshold: float
    drifted: bool

    @property
    def is_p_value(self) -> bool:
        return self.test in P_VALUE_TESTS


def ks(reference: Sketch, current: Sketch, threshold: float) -> TestResult:
    """Two-sample Kolmogorov-Smirnov test (p-value)."""
    ref, cur = _numeric(reference, "ks"), _numeric(current, "ks")
    if ref.exact is not None and cur.exact is not None and ref.exact.size and cur.exact.size:
        p = float(stats.ks_2samp(ref.exact, cur.exact).pvalue)
    else:
        n, m = ref.present, cur.present
        d = float(np.max(np.abs(np.cumsum(ref.counts) / n - np.cumsum(cur.counts) / m)))
        p = float(stats.kstwo.sf(d, max(round(n * m / (n + m)), 1)))
    return TestResult("ks", p, threshold, p < threshold)


def wasserstein(reference: Sketch, current: Sketch, threshold: float) -> TestResult:
    """Wasserstein (earth mover's) distance in units of the reference's deviation."""
    ref, cur = _numeric(reference, "wasserstein"), _numeric(current, "wasserstein")
    norm = max(ref.std, 0.001)
    if ref.exact is not None and cur.exact is not None and ref.exact.size and cur.exact.size:
        distance = float(stats.wasserstein_distance(ref.exact, cur.exact))
    else:
        distance = _atoms_distance(*ref.atoms(), *cur.atoms())
    value = distance / norm
    return TestResult("wasserstein", value, threshold, value > threshold)


def _atoms_distance(xa: np.ndarray, wa: np.ndarray, xb: np.ndarray, wb: np.ndarray) -> float:
    x = np.concatenate([xa, xb])
    order = np.argsort(x, kind="stable")
    w = np.concatenate([wa / wa.sum(), -wb / wb.sum()])[order]
    return float(np.sum(np.abs(np.cumsum(w)[:-1]) * np.diff(x[order])))


def psi(reference: Sketch, current: Sketch, threshold: float) -> TestResult:
    """Population stability index over ten reference-quantile groups (or the categories)."""
    if isinstance(reference, NumericSketch) and not reference.by_value:
        cur = _numeric(current, "psi")
        share = np.cumsum(reference.counts) / reference.present
        groups = np.minimum((share * 10 - 1e-9).astype(np.int64).clip(0), 9)
        p = np.bincount(groups, weights=reference.counts, minlength=10)
        q = np.bincount(groups, weights=cur.counts, minlength=10)
    else:
        p, q = _shares(reference, current)
    p, q = np.maximum(p / p.sum(), _FLOOR), np.maximum(q / q.sum(), _FLOOR)
    value = float(np.sum((q - p) * np.log(q / p)))
    return TestResult("psi", value, threshold, value > threshold)


def jensenshannon(reference: Sketch, current: Sketch, threshold: float) -> TestResult:
    """Jensen-Shannon distance of the category (or bin) shares, natural log."""
    p, q = _shares(reference, current)
    value = float(_js(p / p.sum(), q / q.sum()))
    return TestResult("jensenshannon", value, threshold, value > threshold)


def chisquare(reference: Sketch, current: Sketch, threshold: float) -> TestResult:
    """Pearson's chi-square test of the window's counts against the reference's shares
    (p-value). A value the reference never had is expected half a time, not never."""
    p, q = _shares(reference, current)
    p = np.where(p == 0, 0.5, p)
    expected = p / p.sum() * q.sum()
    value = float(stats.chisquare(q, expected).pvalue)
    return TestResult("chisquare", value, threshold, value < threshold)


def ztest(reference: Sketch, current: Sketch, threshold: float) -> TestResult:
    """Two-proportion z-test on the most common reference value's share (p-value)."""
    p, q = _shares(reference, current)
    first = int(np.argmax(p))
    n, m = p.sum(), q.sum()
    pooled = (p[first] + q[first]) / (n + m)
    spread = np.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m))
    if spread == 0:
        value = 1.0
    else:
        value = float(2 * stats.norm.sf(abs(p[first] / n - q[first] / m) / spread))
    return TestResult("ztest", value, threshold, value < threshold)


def _numeric(sketch: Sketch, test: str) -> NumericSketch:
    if not isinstance(sketch, NumericSketch):
        raise InvalidInput(
            f"the {test} test needs numbers; this column holds categories", field="method"
        )
    return sketch


def _shares(reference: Sketch, current: Sketch) -> tuple[np.ndarray, np.ndarray]:
    """Counts of both over the union of their values (as categories)."""
    if isinstance(reference, NumericSketch):
        cur = _numeric(current, "this")
        p, q = reference.counts.astype(float), cur.counts.astype(float)
        keep = (p > 0) | (q > 0)
        return p[keep], q[keep]
    if not isinstance(current, CategorySketch):
        raise InvalidInput("a categorical column cannot be compared with numbers", field="method")
    keys = sorted(set(reference.counts) | set(current.counts))
    p = np.array([reference.counts.get(k, 0) for k in keys] + [reference.other], dtype=float)
    q = np.array([current.counts.get(k, 0) for k in keys] + [current.other], dtype=float)
    keep = (p > 0) | (q > 0)
    return p[keep], q[keep]


TESTS: dict[str, Callable[[Sketch, Sketch, float], TestResult]] = {
    "ks": ks,
    "wasserstein": wasserstein,
    "psi": psi,
    "jensenshannon": jensenshannon,
    "chisquare": chisquare,
    "ztest": ztest,
}
P_VALUE_TESTS = frozenset({"ks", "chisquare", "ztest"})
THRESHOLDS = {
    "ks": 0.05,
    "wasserstein": 0.1,
    "psi": 0.1,
    "jensenshannon": 0.1,
    "chisquare": 0.05,
    "ztest": 0.05,
}
NUMERIC_ONLY = frozenset({"ks", "wasserstein"})


def distinct_values(reference: Sketch, current: Sketch) -> int:
    """Distinct values in both together (``FEW_VALUES + 1`` standing for "many")."""
    many = FEW_VALUES + 1
    if isinstance(reference, CategorySketch) and isinstance(current, CategorySketch):
        if reference.other or current.other:
            return many
        return len(set(reference.counts) | set(current.counts))
    ref, cur = _numeric(reference, "this"), _numeric(current, "this")
    if ref.exact is not None and cur.exact is not None:
        return int(np.unique(np.concatenate([ref.exact, cur.exact])).size)
    if not ref.by_value:
        return many
    if cur.counts[0]:
        return many  # values below every reference value: not known how many
    # A bin holds one reference value; a window's bin whose mean is not that value holds
    # others too (values between or above the reference's).
    if not np.allclose(cur.sums[1:], cur.counts[1:] * ref.edges, rtol=1e-9, atol=1e-12):
        return many
    return int(np.count_nonzero(ref.counts + cur.counts))


def default_test(reference: Sketch, current: Sketch) -> str:
    """Evidently's choice: a statistical test for a small reference, a distance for a
    large one; numbers with few distinct values are compared as categories."""
    values = distinct_values(reference, current)
    numeric = isinstance(reference, NumericSketch) and values > FEW_VALUES
    if reference.present <= SMALL:
        if numeric:
            return "ks"
        return "chisquare" if values > 2 else "ztest"
    return "wasserstein" if numeric else "jensenshannon"
