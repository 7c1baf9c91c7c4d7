"""A reference profile as SageMaker Model Monitor's statistics.json and constraints.json:
the counts, moments, types, completeness and domains of the data it was made from."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.monitoring import profile
from loopml.monitoring.sagemaker import constraints, statistics


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 5000
    price = rng.lognormal(3, 0.6, n)
    price[:250] = np.nan
    return pd.DataFrame(
        {
            "price": price,
            "rooms": rng.integers(1, 6, n),
            "change": rng.normal(0, 1, n),
            "city": rng.choice(["oslo", "bergen", "tromso"], n, p=[0.5, 0.3, 0.2]),
            "id": [f"row-{i}" for i in range(n)],
        }
    )


def feature(document: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [f for f in document["features"] if f["name"] == name]
    return found


def test_statistics_hold_the_data_s_counts_moments_and_ten_buckets(frame: pd.DataFrame) -> None:
    stats = json.loads(json.dumps(statistics(profile(frame))))  # plain JSON, as a file
    assert stats["dataset"]["item_count"] == len(frame)
    numbers = feature(stats, "price")["numerical_statistics"]
    present = frame["price"].dropna()
    assert numbers["common"] == {"num_present": len(present), "num_missing": 250}
    assert numbers["mean"] == pytest.approx(present.mean())
    assert numbers["sum"] == pytest.approx(present.sum())
    assert numbers["std_dev"] == pytest.approx(present.std(ddof=0))
    assert (numbers["min"], numbers["max"]) == (present.min(), present.max())
    buckets = numbers["distribution"]["kll"]["buckets"]
    assert len(buckets) == 10
    assert sum(b["count"] for b in buckets) == len(present)
    assert buckets[0]["lower_bound"] == present.min()
    assert buckets[-1]["upper_bound"] == present.max()
    # Bins are placed by their mean: each bucket's count is close to the true one.
    edges = [b["lower_bound"] for b in buckets] + [present.max()]
    true, _ = np.histogram(present, bins=edges)
    assert np.abs(np.array([b["count"] for b in buckets]) - true).max() <= 0.02 * len(present)
    city = feature(stats, "city")["string_statistics"]
    assert city["distinct_count"] == 3
    counts = {b["value"]: b["count"] for b in city["distribution"]["categorical"]["buckets"]}
    assert counts == frame["city"].value_counts().to_dict()


def test_types_follow_the_values(frame: pd.DataFrame) -> None:
    stats = statistics(profile(frame))
    assert feature(stats, "rooms")["inferred_type"] == "Integral"
    assert feature(stats, "change")["inferred_type"] == "Fractional"
    assert feature(stats, "city")["inferred_type"] == "String"


def test_constraints_give_completeness_signs_and_small_domains(frame: pd.DataFrame) -> None:
    made = constraints(profile(frame), comparison_threshold=0.2)
    assert feature(made, "price")["completeness"] == pytest.approx(1 - 250 / len(frame))
    assert feature(made, "price")["num_constraints"] == {"is_non_negative": True}
    assert feature(made, "change")["num_constraints"] == {"is_non_negative": False}
    assert feature(made, "city")["string_constraints"] == {"domains": ["bergen", "oslo", "tromso"]}
    assert "string_constraints" not in feature(made, "id")  # 5,000 values: no domain
    assert made["monitoring_config"]["distribution_constraints"]["comparison_threshold"] == 0.2
