"""A reference profile as SageMaker Model Monitor's baseline files, ``statistics.json``
and ``constraints.json``, so a team can take its baseline to (or compare it with)
SageMaker's tools.

The distribution is given, as SageMaker materialises it, in 10 buckets; loopml's bins
are not a KLL sketch, so the ``sketch`` member is left out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from loopml.monitoring.profile import Profile
from loopml.monitoring.sketch import CategorySketch, NumericSketch, Sketch

_BUCKETS = 10
_DOMAIN_LIMIT = 100  # categories listed as a string constraint's domain, as SageMaker does


def statistics(profile: Profile) -> dict[str, Any]:
    """``statistics.json`` of a profile."""
    return {
        "version": 0.0,
        "dataset": {"item_count": profile.rows},
        "features": [_feature_statistics(name, s) for name, s in profile.columns.items()],
    }


def constraints(profile: Profile, comparison_threshold: float = 0.1) -> dict[str, Any]:
    """``constraints.json`` of a profile: types, completeness, non-negative numbers and the
    domains of small categorical columns."""
    features = []
    for name, sketch in profile.columns.items():
        entry: dict[str, Any] = {
            "name": name,
            "inferred_type": inferred_type(sketch),
            "completeness": sketch.present / sketch.rows if sketch.rows else 0.0,
        }
        if isinstance(sketch, NumericSketch):
            entry["num_constraints"] = {
                "is_non_negative": bool(sketch.present and sketch.minimum >= 0)
            }
        elif sketch.complete and len(sketch.counts) <= _DOMAIN_LIMIT:
            entry["string_constraints"] = {"domains": sorted(sketch.counts)}
        features.append(entry)
    return {
        "version": 0.0,
        "features": features,
        "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": 1.0,
            "domain_content_threshold": 1.0,
            "distribution_constraints": {
                "perform_comparison": "Enabled",
                "comparison_threshold": comparison_threshold,
                "comparison_method": "Robust",
                "categorical_comparison_threshold": comparison_threshold,
                "categorical_drift_method": "LInfinity",
            },
        },
    }


def inferred_type(sketch: Sketch) -> str:
    if isinstance(sketch, CategorySketch):
        return "String"
    if not sketch.present:
        return "Unknown"
    # Whole numbers are known only where the values themselves were kept (as edges of a
    # by-value sketch, or exactly); binned values may lie between their edges.
    if sketch.exact is not None:
        values = sketch.exact
    elif sketch.by_value:
        values = sketch.edges
    else:
        return "Fractional"
    return "Integral" if bool(np.all(np.mod(values, 1) == 0)) else "Fractional"


def _feature_statistics(name: str, sketch: Sketch) -> dict[str, Any]:
    common = {"num_present": sketch.present, "num_missing": sketch.rows - sketch.present}
    if isinstance(sketch, CategorySketch):
        ordered = sorted(sketch.counts.items(), key=lambda item: (-item[1], item[0]))
        buckets = [{"value": value, "count": count} for value, count in ordered]
        return {
            "name": name,
            "inferred_type": "String",
            "string_statistics": {
                "common": common,
                "distinct_count": float(len(sketch.counts) + (1 if sketch.other else 0)),
                "distribution": {"categorical": {"buckets": buckets}},
            },
        }
    numbers: dict[str, Any] = {"common": common}
    if sketch.present:
        numbers.update(
            mean=sketch.mean, sum=sketch.total, std_dev=sketch.std,
            min=sketch.minimum, max=sketch.maximum,
            distribution={"kll": {"buckets": _buckets(sketch)}},
        )  # fmt: skip
    return {"name": name, "inferred_type": inferred_type(sketch), "numerical_statistics": numbers}


def _buckets(sketch: NumericSketch) -> list[dict[str, float]]:
    """Ten equal-width buckets from min to max, each bin's count given to the bucket its
    values' mean falls in."""
    low, high = sketch.minimum, sketch.maximum
    edges = np.linspace(low, high, _BUCKETS + 1) if high > low else np.array([low, high])
    positions, weights = sketch.atoms()
    where = np.clip(np.searchsorted(edges, positions, side="right") - 1, 0, len(edges) - 2)
    counts = np.bincount(where, weights=weights, minlength=len(edges) - 1)
    return [
        {"lower_bound": float(a), "upper_bound": float(b), "count": float(c)}
        for a, b, c in zip(edges[:-1], edges[1:], counts, strict=True)
    ]
