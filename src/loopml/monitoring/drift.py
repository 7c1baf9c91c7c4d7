"""Drift between a reference profile and a window's: per column, for the whole frame, and
in words a person can act on."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from loopml.core.errors import InvalidInput
from loopml.monitoring.profile import Profile
from loopml.monitoring.sketch import CategorySketch, NumericSketch, Sketch
from loopml.monitoring.stattests import (
    NUMERIC_ONLY,
    P_VALUE_TESTS,
    TESTS,
    THRESHOLDS,
    TestResult,
    default_test,
)

_PLOT_BINS = 30
_PLOT_CATEGORIES = 20


@dataclass
class DriftOptions:
    """How drift is decided.

    Parameters
    ----------
    method : str, optional
        One test for every column (``ks``, ``wasserstein``, ``psi``, ``jensenshannon``,
        ``chisquare``, ``ztest``); by default each column gets the test its type and the
        sample size call for.
    methods : mapping of str to str, optional
        A test per column, over ``method``.
    thresholds : mapping of str to float, optional
        Thresholds per test, over the defaults (p-value 0.05; distances 0.1).
    drift_share : float
        The frame has drifted when at least this share of its columns drifted.
    """

    method: str | None = None
    methods: Mapping[str, str] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    drift_share: float = 0.5

    def check(self) -> DriftOptions:
        for name in [self.method, *self.methods.values(), *self.thresholds]:
            if name is not None and name not in TESTS:
                raise InvalidInput(
                    f"unknown drift test {name!r}; choose one of {', '.join(TESTS)}", field="method"
                )
        for name, value in self.thresholds.items():
            if name in P_VALUE_TESTS and isinstance(value, int | float) and value >= 1:
                raise InvalidInput(
                    f"threshold of {name} is a p-value: it must be below 1", field="thresholds"
                )
            if isinstance(value, bool) or not (
                isinstance(value, int | float) and math.isfinite(value) and value > 0
            ):
                raise InvalidInput(
                    f"threshold of {name} must be a positive number", field="thresholds"
                )
        if not 0 < self.drift_share <= 1:
            raise InvalidInput("drift_share must be in (0, 1]", field="drift_share")
        return self

    def test_for(self, column: str, reference: Sketch, current: Sketch) -> str:
        chosen = self.methods.get(column) or self.method or default_test(reference, current)
        if chosen in NUMERIC_ONLY and isinstance(reference, CategorySketch):
            raise InvalidInput(
                f"column {column!r} holds categories; the {chosen} test needs numbers",
                field="method",
            )
        return chosen

    def threshold(self, test: str) -> float:
        return float(self.thresholds.get(test, THRESHOLDS[test]))


@dataclass
class ColumnDrift:
    column: str
    kind: str
    result: TestResult | None  # None: no rows to compare
    message: str
    plot: dict[str, Any]
    reference_rows: int
    current_rows: int

    @property
    def drifted(self) -> bool:
        return self.result is not None and self.result.drifted

    def to_dict(self) -> dict[str, Any]:
        result = self.result
        return {
            "column": self.column,
            "kind": self.kind,
            "test": None if result is None else result.test,
            "statistic": None if result is None else _finite(result.statistic),
            "threshold": None if result is None else result.threshold,
            "drifted": self.drifted,
            "message": self.message,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "plot": self.plot,
        }


@dataclass
class DriftReport:
    columns: list[ColumnDrift]
    drift_share: float
    outputs: list[ColumnDrift] = field(default_factory=list)  # prediction drift

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def share(self) -> float:
        tested = [c for c in self.columns if c.result is not None]
        return len(self.drifted_columns) / len(tested) if tested else 0.0

    @property
    def dataset_drifted(self) -> bool:
        return bool(self.columns) and self.share >= self.drift_share

    @property
    def message(self) -> str:
        tested = sum(1 for c in self.columns if c.result is not None)
        drifted = self.drifted_columns
        verdict = "the data drifted" if self.dataset_drifted else "no dataset drift"
        named = f": {', '.join(drifted)}" if drifted else ""
        return (
            f"{verdict}: {len(drifted)} of {tested} columns drifted "
            f"({self.share:.0%}; dataset drift at {self.drift_share:.0%}){named}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset_drifted": self.dataset_drifted,
            "drifted_columns": self.drifted_columns,
            "share": self.share,
            "drift_share": self.drift_share,
            "message": self.message,
            "columns": [c.to_dict() for c in self.columns],
            "outputs": [c.to_dict() for c in self.outputs],
        }


def compare(
    reference: Profile, current: Profile, options: DriftOptions | None = None
) -> DriftReport:
    """Drift of every column both profiles have, and of the model's answers (prediction
    drift, not counted in the dataset's share)."""
    options = (options or DriftOptions()).check()

    # A test forced on the features is not forced on the answers (labels are categories).
    answers = replace(options, method=None, methods={})

    def each(
        ref: dict[str, Sketch], cur: dict[str, Sketch], how: DriftOptions
    ) -> list[ColumnDrift]:
        return [column_drift(n, s, cur[n], how) for n, s in ref.items() if n in cur]

    return DriftReport(
        each(reference.columns, current.columns, options),
        options.drift_share,
        each(reference.outputs, current.outputs, answers),
    )


def column_drift(
    name: str, reference: Sketch, current: Sketch, options: DriftOptions
) -> ColumnDrift:
    """One column's drift test, message and plot data."""
    plot = plot_data(reference, current)
    if reference.present == 0 or current.present == 0:
        which = "the reference" if reference.present == 0 else "this window"
        return ColumnDrift(
            name,
            reference.kind,
            None,
            f"`{name}`: not tested, {which} has no values",
            plot,
            reference.rows,
            current.rows,
        )
    test = options.test_for(name, reference, current)
    result = TESTS[test](reference, current, options.threshold(test))
    return ColumnDrift(
        name,
        reference.kind,
        result,
        describe(name, reference, current, result),
        plot,
        reference.rows,
        current.rows,
    )


def describe(name: str, reference: Sketch, current: Sketch, result: TestResult) -> str:
    """ "`income` drifted: mean 52k -> 61k, Wasserstein 0.23 > 0.1"."""
    verdict = "drifted" if result.drifted else "did not drift"
    if isinstance(reference, NumericSketch) and isinstance(current, NumericSketch):
        change = (
            f"mean {number(reference.mean)} -> {number(current.mean)}, "
            f"std {number(reference.std)} -> {number(current.std)}"
        )
    else:
        change = _largest_change(reference, current)
    return f"`{name}` {verdict}: {change}, {_verdict(result)}"


def _verdict(result: TestResult) -> str:
    label = {
        "ks": "KS p-value",
        "chisquare": "chi-square p-value",
        "ztest": "z-test p-value",
        "wasserstein": "Wasserstein (normed)",
        "psi": "PSI",
        "jensenshannon": "Jensen-Shannon",
    }[result.test]
    if result.is_p_value:
        sign = "<" if result.drifted else ">="
    else:
        sign = ">" if result.drifted else "<="
    return f"{label} {number(result.statistic)} {sign} {number(result.threshold)}"


def _largest_change(reference: Sketch, current: Sketch) -> str:
    ref, cur = _category_shares(reference), _category_shares(current)
    if not ref or not cur:
        return "no values to compare"
    keys = set(ref) | set(cur)
    key = max(keys, key=lambda k: (abs(cur.get(k, 0.0) - ref.get(k, 0.0)), k))
    return f"{key!r} {ref.get(key, 0.0):.1%} -> {cur.get(key, 0.0):.1%} of rows"


def _category_shares(sketch: Sketch) -> dict[str, float]:
    if isinstance(sketch, CategorySketch):
        total = sketch.present
        return {k: v / total for k, v in sketch.counts.items()} if total else {}
    total = sketch.present
    labels = bin_labels(sketch)
    return {labels[i]: c / total for i, c in enumerate(sketch.counts) if c} if total else {}


def bin_labels(sketch: NumericSketch) -> list[str]:
    """Names of a sketch's bins: its values when binned by value, ranges otherwise."""
    edges = sketch.edges
    if sketch.by_value:
        return [f"< {number(edges[0])}"] + [number(e) for e in edges]
    inner = [f"{number(a)} .. {number(b)}" for a, b in itertools.pairwise(edges)]
    return [f"< {number(edges[0])}", *inner, f">= {number(edges[-1])}"]


def plot_data(reference: Sketch, current: Sketch) -> dict[str, Any]:
    """Shares of rows per bin (numbers) or per category, for both, ready to draw."""
    if isinstance(reference, NumericSketch) and isinstance(current, NumericSketch):
        if reference.by_value:
            labels = bin_labels(reference)
            return {
                "type": "bars",
                "labels": labels,
                "reference": _share(reference.counts),
                "current": _share(current.counts),
            }
        size = reference.counts.size
        shown = min(_PLOT_BINS, size)
        groups = np.arange(size) * shown // size
        ref = np.bincount(groups, weights=reference.counts, minlength=shown)
        cur = np.bincount(groups, weights=current.counts, minlength=shown)
        # Bin i starts at edges[i - 1]; bin 0 at the smaller minimum of the two.
        lower = np.r_[min(reference.minimum, current.minimum), reference.edges]
        first = np.searchsorted(groups, np.arange(shown))
        edges = [*lower[first].tolist(), max(reference.maximum, current.maximum)]
        return {
            "type": "histogram",
            "edges": [_finite(e) for e in edges],
            "reference": _share(ref),
            "current": _share(cur),
        }
    if isinstance(reference, CategorySketch) and isinstance(current, CategorySketch):
        order = sorted(reference.counts, key=lambda k: -reference.counts[k])[:_PLOT_CATEGORIES]
        order += [k for k in current.unseen_values(5) if k not in order]
        ref = np.array([reference.counts.get(k, 0) for k in order], dtype=float)
        cur = np.array([current.counts.get(k, 0) for k in order], dtype=float)
        return {
            "type": "bars",
            "labels": order,
            "reference": (ref / max(reference.present, 1)).round(6).tolist(),
            "current": (cur / max(current.present, 1)).round(6).tolist(),
        }
    return {"type": "none"}


def _share(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return (counts / total).round(6).tolist() if total else [0.0] * len(counts)


def number(value: float) -> str:
    """A number as people read it: 52,314.2 -> 52.3k, 0.0234 -> 0.0234."""
    if value is None or not math.isfinite(value):
        return "n/a"
    size = abs(value)
    for limit, unit, suffix in ((1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if size >= limit:
            return f"{value / unit:.3g}{suffix}"
    return f"{value:.3g}"


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
